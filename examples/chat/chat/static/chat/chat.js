// The room page: join the room over WebSocket, show what arrives, send what is typed.
"use strict";

(function () {
  const list = document.getElementById("messages");
  const status = document.getElementById("status");
  const error = document.getElementById("error");
  const form = document.getElementById("say");
  const input = document.getElementById("text");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws/rooms/${list.dataset.room}/`;
  let socket = null;
  let retryDelay = 1000;

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

  function connect() {
    setStatus("connecting", "connecting…");
    socket = new WebSocket(url);
    socket.onopen = function () {
      retryDelay = 1000;
      setStatus("open", "connected");
    };
    socket.onmessage = function (event) {
      const data = JSON.parse(event.data);
      if (data.message) {
        error.hidden = true;
        show(data.message);
      } else if (data.error) {
        error.textContent = data.error;
        error.hidden = false;
      }
    };
    socket.onclose = function () {
      // Try again, a little later each time (at most every 30 s): the server may be restarting.
      setStatus("closed", `disconnected, retrying in ${retryDelay / 1000} s`);
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (text && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ text: text }));
      input.value = "";
    }
  });

  connect();
})();
