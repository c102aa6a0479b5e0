// The page talks to the same API as any client: /ask_stream (or /ask) and /feedback.
"use strict";
const $ = (id) => document.getElementById(id);
let config = { auth: false, header: "x-api-key", streams: false };
let last = null;

function headers() {
  const h = { "content-type": "application/json" };
  if (config.auth) h[config.header] = $("key").value || localStorage.getItem("ragship-key") || "";
  return h;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body.error && body.detail) return body.detail.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
    return body.error || JSON.stringify(body);
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function renderAnswer(text) {
  // Numbered citations [n] become links to the n-th source.
  const answer = $("answer");
  answer.textContent = "";
  const parts = text.split(/(\[\d+\])/);
  for (const part of parts) {
    const m = part.match(/^\[(\d+)\]$/);
    if (m) {
      const a = document.createElement("a");
      a.href = `#source-${m[1]}`;
      a.className = "cite";
      a.textContent = part;
      answer.appendChild(a);
    } else {
      answer.appendChild(document.createTextNode(part));
    }
  }
}

function renderSources(sources) {
  const list = $("sources");
  list.textContent = "";
  for (const s of sources) {
    const li = document.createElement("li");
    li.id = `source-${s.citation}`;
    li.className = s.cited ? "cited" : "";
    li.value = s.citation;
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = s.title && s.title !== s.source ? `${s.title} (${s.source})` : s.source;
    const snippet = document.createElement("div");
    snippet.className = "snippet";
    snippet.textContent = s.snippet;
    li.append(name, snippet);
    list.appendChild(li);
  }
}

async function ask(question) {
  const route = config.streams ? "/ask_stream" : "/ask";
  const response = await fetch(route, { method: "POST", headers: headers(), body: JSON.stringify({ question }) });
  if (!response.ok) throw new Error(await errorText(response));
  if (!config.streams) return response.json();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", text = "", result = null;
  $("result").hidden = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const event = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if (event.token !== undefined) { text += event.token; renderAnswer(text); }
      else if (event.error) throw new Error(event.error);
      else result = event;
    }
  }
  if (!result) throw new Error("The answer stream ended early.");
  return result;
}

$("ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  if (config.auth && $("key").value) localStorage.setItem("ragship-key", $("key").value);
  $("ask").disabled = true;
  setStatus("Thinking…", false);
  $("rating-status").textContent = "";
  for (const b of document.querySelectorAll("#rating button")) { b.disabled = false; b.classList.remove("chosen"); }
  try {
    const result = await ask(question);
    last = { question, answer: result.answer, sources: result.sources.map((s) => s.source) };
    renderAnswer(result.answer);
    renderSources(result.sources);
    $("result").hidden = false;
    setStatus(`${result.sources.length} sources`, false);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    $("ask").disabled = false;
  }
});

for (const button of document.querySelectorAll("#rating button")) {
  button.addEventListener("click", async () => {
    if (!last) return;
    const body = { rating: button.dataset.rating, comment: $("comment").value, ...last };
    const response = await fetch("/feedback", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (response.ok) {
      button.classList.add("chosen");
      for (const b of document.querySelectorAll("#rating button")) b.disabled = true;
      $("rating-status").textContent = "Thanks, recorded.";
      $("rating-status").className = "";
    } else {
      $("rating-status").textContent = await errorText(response);
      $("rating-status").className = "error";
    }
  });
}

fetch("/ui/config.json").then((r) => r.json()).then((c) => {
  config = { ...config, ...c };
  $("served").textContent = c.spec ? `Serving ${c.spec}` : "";
  $("key").hidden = $("key-label").hidden = !config.auth;
  if (config.auth) $("key").value = localStorage.getItem("ragship-key") || "";
});
