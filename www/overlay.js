// HTML overlay of the show: speech bubbles that follow the characters, and
// frame-time statistics for the HUD.

import { Vector3 } from './vendor/three/three.module.js';

// Minimum distance between a bubble's centre and the viewport edge, in CSS pixels.
const EDGE_MARGIN = 90;
// Horizontal space kept between two bubbles, in CSS pixels.
const BUBBLE_GAP = 12;
// Closest distance between the tail and a side of its bubble, in CSS pixels.
const TAIL_INSET = 18;
// Space kept above a bubble, in CSS pixels: an 8 px gap to the viewport's top
// plus the 10 px that style.css moves a bubble up to make room for its tail.
const TOP_MARGIN = 18;

/** Speech bubble of one character, an absolutely positioned element in `layer`. */
export class SpeechBubble {
  constructor(layer, character) {
    this.character = character;
    this.element = document.createElement('div');
    this.element.className = 'bubble';
    this.element.dataset.speaker = character.name;
    this.element.hidden = true;

    const name = document.createElement('span');
    name.className = 'speaker';
    name.textContent = character.name;
    this.text = document.createElement('span');
    this.text.className = 'text';
    this.element.append(name, this.text);
    layer.append(this.element);

    this.projected = new Vector3();
    this.onScreen = false;
    this.screenX = 0;
    this.screenY = 0;
  }

  /** Shows `text`. With `thinking`, the text is styled as a placeholder while a line is generated. */
  show(text, { thinking = false } = {}) {
    this.text.textContent = text;
    this.element.classList.toggle('thinking', thinking);
    this.element.hidden = false;
  }

  /**
   * Shows the part of a generated line received so far, `text`, and marks the
   * bubble as still filling in until `done`.
   */
  fill(text, { done }) {
    this.text.textContent = text.trim() || '…';
    this.element.classList.remove('thinking');
    this.element.classList.toggle('filling', !done);
    this.element.hidden = false;
  }

  hide() {
    this.element.hidden = true;
    this.element.classList.remove('thinking', 'filling');
  }

  /**
   * Projects the character's anchor point to the screen and stores it in
   * `screenX`/`screenY` (CSS pixels). `placeBubbles` then positions the element.
   */
  project(camera, width, height) {
    this.projected.copy(this.character.anchor).project(camera);
    this.onScreen = !this.element.hidden && this.projected.z <= 1;
    this.screenX = (this.projected.x + 1) / 2 * width;
    this.screenY = (1 - this.projected.y) / 2 * height;
  }

  // Draws the bubble centred at `x` with its tail end at (`screenX`, `screenY`),
  // or lower when the bubble would otherwise reach above the viewport.
  place(x) {
    this.element.style.visibility = 'visible';
    const y = Math.max(this.screenY, this.element.offsetHeight + TOP_MARGIN);
    const tailLimit = Math.max(this.element.offsetWidth / 2 - TAIL_INSET, 0);
    const tail = clamp(this.screenX - x, -tailLimit, tailLimit);
    this.element.style.setProperty('--tail-offset', `${tail.toFixed(1)}px`);
    this.element.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px) translate(-50%, -100%)`;
  }
}

/**
 * Positions the visible bubbles above their characters, pushing neighbours
 * apart horizontally where they would overlap, and keeping each at least
 * `EDGE_MARGIN` away from the left and right edges of the viewport.
 */
export function placeBubbles(bubbles, camera, width, height) {
  for (const bubble of bubbles) {
    bubble.project(camera, width, height);
    if (!bubble.onScreen) {
      bubble.element.style.visibility = 'hidden';
    }
  }

  const visible = bubbles.filter((bubble) => bubble.onScreen).sort((a, b) => a.screenX - b.screenX);
  const centres = visible.map((bubble) => bubble.screenX);

  // A few relaxation passes over neighbouring pairs settle up to four bubbles.
  for (let pass = 0; pass < 3; pass += 1) {
    for (let i = 0; i + 1 < visible.length; i += 1) {
      const left = visible[i];
      const right = visible[i + 1];
      const minGap = (left.element.offsetWidth + right.element.offsetWidth) / 2 + BUBBLE_GAP;
      const verticalOverlap =
        Math.abs(left.screenY - right.screenY) < Math.max(left.element.offsetHeight, right.element.offsetHeight);
      const shortfall = minGap - (centres[i + 1] - centres[i]);
      if (verticalOverlap && shortfall > 0) {
        centres[i] -= shortfall / 2;
        centres[i + 1] += shortfall / 2;
      }
    }
  }

  visible.forEach((bubble, i) => bubble.place(clamp(centres[i], EDGE_MARGIN, width - EDGE_MARGIN)));
}

/** Frame intervals over a sliding window of the last `capacity` frames, in milliseconds. */
export class FrameStats {
  constructor(capacity = 240) {
    this.intervals = new Float64Array(capacity);
    this.count = 0;
    this.next = 0;
    this.previous = null;
  }

  /** Records the timestamp of a frame, from `requestAnimationFrame`, in milliseconds. */
  record(now) {
    if (this.previous !== null) {
      this.intervals[this.next] = now - this.previous;
      this.next = (this.next + 1) % this.intervals.length;
      this.count = Math.min(this.count + 1, this.intervals.length);
    }
    this.previous = now;
  }

  /** Returns `{ p50, p99, frames }` over the window, or null before the second frame. */
  summary() {
    if (this.count === 0) {
      return null;
    }

    const sorted = this.intervals.slice(0, this.count).sort();
    return {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      frames: this.count,
    };
  }
}

// Nearest-rank percentile of an ascending array.
function percentile(sorted, fraction) {
  const rank = Math.ceil(fraction * sorted.length) - 1;
  return sorted[Math.min(Math.max(rank, 0), sorted.length - 1)];
}

function clamp(value, low, high) {
  if (high < low) {
    return (low + high) / 2;
  }
  return Math.min(Math.max(value, low), high);
}
