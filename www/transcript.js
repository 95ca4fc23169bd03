// Transcript of the show: every spoken line in the order the simulation emitted
// it, as plain objects in an array and as items of an aria-live list.
//
// An entry is { index, kind, tick, encounter, speaker, text, status }, where kind
// is 'question' (scripted, status 'done' at once) or 'answer' (generated). An
// answer entry also has { asker, heard, seed } from the request, status
// 'pending', 'done' or 'failed', and once done { tokens, tokenIds, promptTokens,
// stopReason, elapsedMs } from the host's line.

// List items kept in the page. Older items are removed from the DOM, but the
// entries array keeps every line.
const MAX_ITEMS = 200;

export class Transcript {
  constructor(list, entries) {
    this.list = list;
    this.entries = entries;
    this.items = new Map();
  }

  /** Appends a scripted question and returns its entry. */
  addQuestion({ tick, encounter, speaker, listener, text }) {
    return this.add({ kind: 'question', tick, encounter, speaker, listener, text, status: 'done' });
  }

  /** Appends a generated line that has been requested but not received, and returns its entry. */
  addAnswer({ tick, encounter, speaker, asker, heard, seed }) {
    return this.add({ kind: 'answer', tick, encounter, speaker, asker, heard, seed, text: '', status: 'pending' });
  }

  /** Shows the part of an answer received so far. */
  progress(entry, text) {
    entry.text = text;
    this.render(entry);
  }

  /** Stores the finished line of an answer from `Dialogue.say`. */
  complete(entry, line) {
    Object.assign(entry, {
      text: line.text,
      status: 'done',
      tokens: line.tokens,
      tokenIds: Array.from(line.tokenIds),
      promptTokens: line.promptTokens,
      stopReason: line.stopReason,
      elapsedMs: line.elapsedMs,
    });
    this.render(entry);
  }

  /** Marks an answer as failed, with a short reason such as an error code. */
  fail(entry, reason) {
    entry.status = 'failed';
    entry.failure = reason;
    this.render(entry);
  }

  add(fields) {
    const entry = { index: this.entries.length, ...fields };
    this.entries.push(entry);

    const item = document.createElement('li');
    item.dataset.kind = entry.kind;
    item.dataset.index = String(entry.index);
    const tick = document.createElement('span');
    tick.className = 'tick';
    tick.textContent = `t${entry.tick}`;
    const speaker = document.createElement('span');
    speaker.className = 'speaker';
    speaker.textContent = entry.speaker;
    const text = document.createElement('span');
    text.className = 'text';
    item.append(tick, ' ', speaker, ': ', text);
    this.list.append(item);
    this.items.set(entry.index, { item, text });

    while (this.list.childElementCount > MAX_ITEMS) {
      const oldest = this.list.firstElementChild;
      this.items.delete(Number(oldest.dataset.index));
      oldest.remove();
    }

    this.render(entry);
    this.list.parentElement.scrollTop = this.list.parentElement.scrollHeight;
    return entry;
  }

  render(entry) {
    const parts = this.items.get(entry.index);
    if (!parts) {
      return;
    }
    parts.item.dataset.status = entry.status;
    parts.item.setAttribute('aria-busy', String(entry.status === 'pending'));
    if (entry.status === 'failed') {
      parts.text.textContent = `(no line: ${entry.failure})`;
    } else {
      parts.text.textContent = entry.text.trim() || '…';
    }
  }
}
