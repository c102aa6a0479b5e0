// The page talks to the same API as any client: /ask_stream (or /ask) and /feedback.
"use strict";
const $ = (id) => document.getElementById(id);
let config = { auth: false, header: "x-api-key", streams: false, max_history_turns: 10 };
let last = null;
// The conversation lives in the page: the earlier questions, oldest first, go with each follow-up.
let history = [];
const TURN_ANSWER_CHARS = 300;

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

// Answers are Markdown-ish: paragraphs split by blank lines, ``` fenced code blocks, `inline code`, and
// numbered citations [n]. Everything is built with createElement/textContent: answer text never reaches
// innerHTML. The whole text is re-rendered on every streamed token, so an unterminated fence shows as
// code so far.
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;

function appendInline(parent, text) {
  // `code` first (a [1] inside code stays code), then citations [n] as links to the n-th source.
  for (const part of text.split(/(`[^`\n]+`|\[\d+\])/)) {
    if (!part) continue;
    const cite = part.match(/^\[(\d+)\]$/);
    if (part.length > 2 && part.startsWith("`") && part.endsWith("`")) {
      const code = document.createElement("code");
      code.textContent = part.slice(1, -1);
      parent.appendChild(code);
    } else if (cite) {
      const a = document.createElement("a");
      a.href = `#source-${cite[1]}`;
      a.className = "cite";
      a.textContent = part;
      parent.appendChild(a);
    } else {
      parent.appendChild(document.createTextNode(part));
    }
  }
}

function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) {
      const p = document.createElement("p");
      appendInline(p, paragraph.join("\n"));
      out.appendChild(p);
      paragraph = [];
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(FENCE_OPEN);
    if (!open) {
      if (lines[i].trim()) paragraph.push(lines[i].trim());
      else flush();
      continue;
    }
    flush();
    const fence = open[1];
    const body = [];
    for (i++; i < lines.length; i++) {
      const close = lines[i].trim();
      if (close.length >= fence.length && close === fence[0].repeat(close.length)) break;
      body.push(lines[i]);
    }
    const pre = document.createElement("pre");
    const code = document.createElement("code");
    if (open[2]) code.className = `language-${open[2].replace(/[^\w+-]/g, "")}`;
    code.textContent = body.join("\n");
    pre.appendChild(code);
    out.appendChild(pre);
  }
  flush();
  return out;
}

function renderAnswer(text) {
  $("answer").replaceChildren(renderMarkdown(text));
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

function addTurn(turn) {
  // An earlier turn: its question and the start of its answer, citations dropped (their sources are gone).
  const li = document.createElement("li");
  const asked = document.createElement("div");
  asked.className = "asked";
  asked.textContent = turn.question;
  const said = document.createElement("div");
  said.className = "said";
  const text = turn.answer.replace(/\[\d+\]/g, "").replace(/\s+/g, " ").trim();
  said.textContent = text.length > TURN_ANSWER_CHARS ? `${text.slice(0, TURN_ANSWER_CHARS)}…` : text;
  li.append(asked, said);
  $("turns").appendChild(li);
  $("conversation").hidden = false;
}

function newConversation() {
  history = [];
  last = null;
  $("turns").replaceChildren();
  $("conversation").hidden = true;
  $("result").hidden = true;
  $("answer").replaceChildren();
  $("sources").replaceChildren();
  $("new-conversation").hidden = true;
  $("question").value = "";
  $("question").placeholder = "How do I run the tests?";
  setStatus("", false);
  $("question").focus();
}

async function ask(question) {
  const route = config.streams ? "/ask_stream" : "/ask";
  const body = { question, history: history.slice(-config.max_history_turns) };
  const response = await fetch(route, { method: "POST", headers: headers(), body: JSON.stringify(body) });
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
    if (last) addTurn(last);
    history.push(question);
    last = { question, answer: result.answer, sources: result.sources.map((s) => s.source) };
    renderAnswer(result.answer);
    renderSources(result.sources);
    $("result").hidden = false;
    $("new-conversation").hidden = false;
    $("question").value = "";
    $("question").placeholder = "Ask a follow-up…";
    setStatus(`${result.sources.length} sources`, false);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    $("ask").disabled = false;
  }
});

$("new-conversation").addEventListener("click", newConversation);

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
  $("key-field").hidden = !config.auth;
  if (config.auth) $("key").value = localStorage.getItem("ragship-key") || "";
});
