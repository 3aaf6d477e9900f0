/* The chat page: renders what /ws/chat/<room>/ sends (see chat/views.py). */
"use strict";

(function () {
  const me = document.body.dataset.user;
  const room = document.getElementById("room");
  const messages = document.getElementById("messages");
  const users = document.getElementById("users");
  const count = document.getElementById("count");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send-button");
  const detail = document.getElementById("state-detail");

  function timeOf(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function render(message) {
    if (document.getElementById("message-" + message.id)) return;
    messages.querySelector(".empty")?.remove();
    const li = document.createElement("li");
    li.id = "message-" + message.id;
    li.className = "message" + (message.user === me ? " mine" : "");
    const user = document.createElement("span");
    user.className = "user";
    user.textContent = message.user;
    const time = document.createElement("time");
    time.dateTime = message.time;
    time.title = new Date(message.time).toLocaleString();
    time.textContent = timeOf(message.time);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.text;
    li.append(user, time, text);
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    messages.appendChild(li);
    if (atBottom || message.user === me) messages.scrollTop = messages.scrollHeight;
  }

  function showPresence(event) {
    count.textContent = `${event.count} online`;
    users.replaceChildren(...event.users.map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === me) li.className = "me";
      return li;
    }));
  }

  const socket = liveSocket(room.dataset.socket, {
    stateElement: document.getElementById("state"),
    detailElement: detail,
    onStateChange(state) { sendButton.disabled = state !== "open"; },
    onMessage(data) {
      const event = JSON.parse(data);
      if (event.type === "history") event.messages.forEach(render);
      else if (event.type === "message") render(event);
      else if (event.type === "presence") showPresence(event);
      else if (event.type === "error") detail.textContent = event.error;
    },
  });

  document.getElementById("send").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && socket.send(JSON.stringify({ text }))) input.value = "";
  });
  document.getElementById("reconnect").addEventListener("click", socket.reconnect);
})();
