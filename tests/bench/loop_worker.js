// The benchmark's decoding loops inside a dedicated module worker, where banter's engine
// also runs, so that the bare loop can be compared with the worker's time without the
// page's thread in between. `cargo xtask bench` copies this file and page_loops.mjs
// beside the extra bundles, which it serves under /bench/.
//
// Messages: `{ setup }`, with the argument of `setUpGraphs`, sets up the graphs and
// replies `{ fileBytes }`. `{ line: name }` decodes one line with the variant `name` and
// replies with what `benchGraphLine` returns. A failure replies `{ error }` with its stack.

import { setUpGraphs } from './page_loops.mjs';

self.onmessage = async ({ data }) => {
  try {
    if (data.setup) {
      self.postMessage({ fileBytes: await setUpGraphs(data.setup) });
    } else {
      self.postMessage(await globalThis.benchGraphLine(data.line));
    }
  } catch (error) {
    self.postMessage({ error: String(error?.stack ?? error) });
  }
};
