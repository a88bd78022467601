// The room page: join the room over WebSocket with channels.js, show what arrives and who is
// online, send what is typed. channels.js reconnects by itself (the server may restart),
// queues what is typed meanwhile, and recovers what the room said while the page was away.
import { Client } from "../channels/channels.js";

const list = document.getElementById("messages");
const online = document.getElementById("online");
const status = document.getElementById("status");
const error = document.getElementById("error");
const form = document.getElementById("say");
const input = document.getElementById("text");
const room = list.dataset.room;
const group = `chat-room-${room}`;
// Where the room's history stood when the page was rendered: what is said before the
// WebSocket opens is recovered from there.
const since = JSON.parse(document.getElementById("since").textContent);

const client = new Client(`/ws/rooms/${room}/`, { since });
const presence = client.presence(group);

function setStatus(state, label) {
  status.dataset.state = state;
  status.textContent = label;
}

function show(message) {
  const item = document.createElement("li");
  const author = document.createElement("b");
  author.className = "author";
  author.textContent = message.author;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text;
  item.append(author, " ", text);
  list.append(item);
  item.scrollIntoView({ block: "nearest" });
}

function showOnline() {
  // One line per user, however many pages they have open.
  const names = new Set([...presence.members.values()].map((info) => info.name));
  online.replaceChildren(
    ...[...names].sort().map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }),
  );
}

client.on("open", () => setStatus("open", "connected"));
client.on("close", ({ delay }) => {
  if (delay !== null) {
    setStatus("closed", `disconnected, retrying in ${Math.ceil(delay / 1000)} s`);
  }
});
client.on("message", (data) => {
  if (data.message) {
    error.hidden = true;
    show(data.message);
  } else if (data.error) {
    error.textContent = data.error;
    error.hidden = false;
  }
});
// The room's history no longer covers what this page missed (the server restarted, or too
// much was said): show the room as the server has it now.
client.on("gap", () => location.reload());
presence.on("change", showOnline);

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text) {
    client.send({ text });
    input.value = "";
  }
});
