// Developer panel: sends one request of the user's choosing to the show's
// dialogue and shows the line with its timing. Hidden unless the URL has `?dev`
// or the ` key is pressed outside a text field.

const TOGGLE_KEY = '`';

export class DevPanel {
  /**
   * `say(request)` sends a request to the dialogue and returns its promise, and
   * `isReady()` returns whether the dialogue has started.
   */
  constructor({ root, open, say, isReady }) {
    this.root = root;
    this.say = say;
    this.isReady = isReady;
    this.current = null;
    this.requests = 0;

    this.form = root.querySelector('#dev-form');
    this.fields = {
      heard: root.querySelector('#dev-heard'),
      seed: root.querySelector('#dev-seed'),
      topK: root.querySelector('#dev-top-k'),
      temperature: root.querySelector('#dev-temperature'),
      maxNewTokens: root.querySelector('#dev-max-new-tokens'),
    };
    this.sayButton = root.querySelector('#dev-say');
    this.cancelButton = root.querySelector('#dev-cancel');
    this.line = root.querySelector('#dev-line');
    this.timing = root.querySelector('#dev-timing');

    root.hidden = !open;
    this.sayButton.disabled = true;
    this.timing.textContent = 'Waiting for the model…';

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.cancelButton.addEventListener('click', () => this.cancel());
    window.addEventListener('keydown', (event) => {
      const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
      if (event.key === TOGGLE_KEY && !typing) {
        root.hidden = !root.hidden;
      }
    });
  }

  /** Enables sending once the dialogue has started. */
  enable() {
    this.sayButton.disabled = false;
    this.timing.textContent = '';
  }

  /**
   * Builds the request from the form. Empty optional fields are left out so the
   * host applies its defaults, and the host validates every value.
   */
  request() {
    const request = { heard: this.fields.heard.value, seed: parseSeed(this.fields.seed.value) };
    const optional = [
      ['topK', this.fields.topK],
      ['temperature', this.fields.temperature],
      ['maxNewTokens', this.fields.maxNewTokens],
    ];
    for (const [name, input] of optional) {
      if (input.value.trim() !== '') {
        request[name] = Number(input.value);
      }
    }
    return request;
  }

  async send() {
    if (!this.isReady()) {
      return;
    }

    this.requests += 1;
    const id = this.requests;
    this.current = id;
    this.cancelButton.disabled = false;
    this.line.textContent = '…';
    this.timing.textContent = 'Generating…';

    const started = performance.now();
    try {
      this.controller = new AbortController();
      let streamed = '';
      const onToken = (delta) => {
        if (this.current === id) {
          streamed += delta;
          this.line.textContent = streamed;
        }
      };
      const line = await this.say({ ...this.request(), onToken, signal: this.controller.signal });
      if (this.current !== id) {
        return;
      }
      this.line.textContent = line.text;
      const rate = line.elapsedMs > 0 ? (line.tokens / line.elapsedMs) * 1000 : 0;
      const waited = performance.now() - started;
      this.timing.textContent =
        `${line.tokens} tokens (prompt ${line.promptTokens}) in ${line.elapsedMs.toFixed(0)} ms, ` +
        `${rate.toFixed(1)} tokens/s, ${waited.toFixed(0)} ms including the queue, stop: ${line.stopReason}`;
    } catch (err) {
      if (this.current !== id) {
        return;
      }
      this.line.textContent = '';
      this.timing.textContent = `${err?.code ?? 'error'}: ${err?.message ?? String(err)}`;
    } finally {
      if (this.current === id) {
        this.current = null;
        this.cancelButton.disabled = true;
      }
    }
  }

  // Aborts the running request; the worker stops it before its next model step,
  // and its promise rejects with code `cancelled`, shown in the timing line.
  cancel() {
    if (this.current === null) {
      return;
    }
    this.controller?.abort();
    this.cancelButton.disabled = true;
  }
}

// Returns the seed as a number when it is a safe integer, as a BigInt for larger
// decimal integers, and unchanged otherwise, so the host reports what is wrong.
function parseSeed(raw) {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) {
    return text === '' ? undefined : text;
  }
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : BigInt(text);
}
