"""The notes binding: ``notes-<topic>`` groups see their notes; signed-in users edit them."""

from channels_ws import WebsocketBinding


class NoteBinding(WebsocketBinding):
    """Notes on the ``notes`` stream, without their secret."""

    model = "notes.Note"
    stream = "notes"
    exclude = ["secret"]

    @classmethod
    def group_names(cls, instance):
        return [f"notes-{instance.topic}"]

    def has_permission(self, user, action, pk):
        return user.is_authenticated
