// A websocket that reconnects with backoff, for live progress pages.
export function reconnectingSocket(path, onMessage, { onStatus = () => {} } = {}) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  let delay = 500;
  let socket;
  let closed = false;
  const connect = () => {
    socket = new WebSocket(`${scheme}://${window.location.host}${path}`);
    socket.addEventListener("open", () => {
      delay = 500;
      onStatus("open");
    });
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      onStatus("closed");
      if (!closed) {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      }
    });
  };
  connect();
  return { close: () => { closed = true; socket.close(); } };
}
