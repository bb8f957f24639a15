// Fetch with the CSRF token Django expects on unsafe methods, and JSON errors turned into
// messages a person can act on.
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function apiFetch(url, { method = "GET", body, headers = {}, ...rest } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers }, ...rest };
  if (method !== "GET" && method !== "HEAD") {
    init.headers["X-CSRFToken"] = csrfToken();
  }
  if (body !== undefined && !(body instanceof FormData)) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    let data = null;
    try {
      data = await response.json();
      detail = errorText(data) || detail;
    } catch {
      /* not JSON: keep the status line */
    }
    const error = new Error(detail);
    error.status = response.status;
    // The fields (e.g. {"answers.acceptability": ["Please answer: …"]}), for a page that shows
    // each message beside what it is about.
    error.data = data;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

export function readJsonScript(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

/** The messages of an API error body in words: its detail, else each field's messages. */
export function errorText(data) {
  if (!data || typeof data !== "object") return "";
  if (typeof data.detail === "string") return data.detail;
  const messages = [];
  const walk = (value) => {
    if (typeof value === "string") messages.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") Object.values(value).forEach(walk);
  };
  walk(data);
  return messages.join(" ");
}
