// The decoding loops that the benchmarks run on a page of the site, with onnxruntime-web
// and no banter code in between: prefill, then one step per token, greedy (candidate 0).
// Candidates come from a JavaScript top-k over the last position's logits (conventional
// layout) or from the graph's top_k output (banter's layout).

/**
 * Runs in the page (pass it to `page.evaluate`): imports onnxruntime-web from the site,
 * sets its thread count to `threads` and opens one session per variant, with the session
 * options of its manifest. Installs `globalThis.benchGraphLine(name)`, which decodes one
 * line with the variant's loop and returns `{ lineMs, prefillMs, tokens }`. Returns each
 * variant's file size in bytes.
 *
 * A variant is `{ name, bundle, wholeSequence, turnPerStep, optimum }`. `bundle` is the
 * bundle folder on the site. With `wholeSequence`, each step re-runs the whole sequence
 * with an empty KV cache. With `turnPerStep`, the loop takes one turn of the event loop
 * before each step. With `optimum`, the folder contains Hugging Face Optimum's export
 * (model.onnx and config.json) instead of a banter bundle.
 *
 * It also runs in a dedicated worker (loop_worker.js), so it uses nothing of the page.
 */
export async function setUpGraphs({ site, variants, promptIds, newTokens, topK, threads = 1 }) {
  const ort = await import(new URL('ort/ort.wasm.min.mjs', site).href);
  ort.env.wasm.numThreads = threads;

  const fetchOk = async (path) => {
    const response = await fetch(new URL(path, site));
    if (!response.ok) {
      throw new Error(`GET ${path} failed with status ${response.status}; run this through cargo xtask bench, which serves the bench/ bundles`);
    }
    return response;
  };

  const graphs = {};
  for (const variant of variants) {
    // A banter bundle has a manifest; a folder written by Hugging Face Optimum has the
    // checkpoint's config.json instead, whose field names are the same.
    const manifest = variant.optimum
      ? { layout: 'conventional', config: await (await fetchOk(`${variant.bundle}config.json`)).json(), session_options: {} }
      : await (await fetchOk(`${variant.bundle}manifest.json`)).json();
    const bytes = new Uint8Array(await (await fetchOk(`${variant.bundle}model.onnx`)).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      extra: manifest.session_options,
    });

    const { num_layers: layers, num_heads: heads, hidden_size: hidden } = manifest.config;
    const headSize = hidden / heads;
    const banter = manifest.layout === 'banter';
    const emptyPast = {};
    let fetches;
    if (banter) {
      emptyPast.past = new ort.Tensor('float32', new Float32Array(0), [2 * layers, heads, 0, headSize]);
      fetches = variant.wholeSequence ? ['top_values', 'top_ids'] : ['top_values', 'top_ids', 'present'];
    } else {
      for (let layer = 0; layer < layers; layer += 1) {
        for (const kind of ['key', 'value']) {
          emptyPast[`past_key_values.${layer}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headSize]);
        }
      }
      fetches = ['logits'];
      if (!variant.wholeSequence) {
        for (let layer = 0; layer < layers; layer += 1) {
          fetches.push(`present.${layer}.key`, `present.${layer}.value`);
        }
      }
    }
    // Optimum's graphs also take an attention mask over the cached and new positions.
    const attentionMask = session.inputNames.includes('attention_mask');
    graphs[variant.name] = {
      ...variant, session, banter, layers, emptyPast, fetches, attentionMask, fileBytes: bytes.byteLength,
    };
  }

  // The k largest logits of `logits[offset .. offset + vocab]` as ids, descending; ties go
  // to the lower id.
  const topKIds = (logits, offset, vocab, k) => {
    const values = new Float32Array(k).fill(-Infinity);
    const ids = new Int32Array(k).fill(-1);
    for (let id = 0; id < vocab; id += 1) {
      const value = logits[offset + id];
      if (value <= values[k - 1]) {
        continue;
      }
      let slot = k - 1;
      while (slot > 0 && values[slot - 1] < value) {
        values[slot] = values[slot - 1];
        ids[slot] = ids[slot - 1];
        slot -= 1;
      }
      values[slot] = value;
      ids[slot] = id;
    }
    return ids;
  };

  // One turn of the event loop, through a MessageChannel: the least a loop that can be
  // cancelled between steps must pay, since a cancel is a message.
  const channel = new MessageChannel();
  const turn = () => new Promise((resolve) => {
    channel.port1.onmessage = resolve;
    channel.port2.postMessage(null);
  });

  const topKTensor = new ort.Tensor('int64', BigInt64Array.from([BigInt(topK)]), [1]);
  const int64 = (values) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);

  // Decodes one line with the minimal loop and returns its time, its prefill time and
  // its new tokens.
  globalThis.benchGraphLine = async (name) => {
    const graph = graphs[name];
    const sequence = promptIds.slice();
    let feed = promptIds.slice();
    let pastLength = 0;
    let past = graph.emptyPast;
    let prefillMs = 0;

    const started = performance.now();
    for (let step = 0; step < newTokens; step += 1) {
      if (graph.turnPerStep) {
        await turn();
      }
      if (graph.wholeSequence) {
        feed = sequence.slice();
        pastLength = 0;
      }
      const positions = Array.from(feed, (_, index) => pastLength + index);
      const feeds = { input_ids: int64(feed), position_ids: int64(positions), ...past };
      if (graph.banter) {
        feeds.top_k = topKTensor;
      }
      if (graph.attentionMask) {
        feeds.attention_mask = int64(new Array(pastLength + feed.length).fill(1));
      }
      const outputs = await graph.session.run(feeds, graph.fetches);

      let next;
      if (graph.banter) {
        next = Number(outputs.top_ids.data[0]);
        if (!graph.wholeSequence) {
          past = { past: outputs.present };
        }
      } else {
        const vocab = outputs.logits.dims[2];
        next = topKIds(outputs.logits.data, (feed.length - 1) * vocab, vocab, topK)[0];
        if (!graph.wholeSequence) {
          past = {};
          for (let layer = 0; layer < graph.layers; layer += 1) {
            past[`past_key_values.${layer}.key`] = outputs[`present.${layer}.key`];
            past[`past_key_values.${layer}.value`] = outputs[`present.${layer}.value`];
          }
        }
      }

      pastLength += feed.length;
      sequence.push(next);
      feed = [next];
      if (step === 0) {
        prefillMs = performance.now() - started;
      }
    }
    const lineMs = performance.now() - started;
    return { lineMs, prefillMs, tokens: sequence.slice(promptIds.length) };
  };

  return Object.fromEntries(Object.values(graphs).map((graph) => [graph.name, graph.fileBytes]));
}
