// Deterministic simulation of the show: characters wander a meadow, and when two
// of them meet, one asks a question and the other answers with a generated line.
//
// Determinism rule: the state after tick N, and every event emitted up to tick N,
// depend only on the world seed and N. The simulation advances in fixed ticks of
// TICK_MS of simulated time. It never reads the wall clock, the frame rate, or
// whether a generated line has arrived. An encounter's whole timeline is fixed in
// ticks when it starts: the question at its first tick, the answer request
// ASK_TICKS later, the parting TALK_TICKS after the start. The caller decides how
// many ticks run per frame, and may hold the clock (for example while too many
// lines are outstanding), which delays events in wall-clock time but does not
// change them.
//
// The state uses only +, -, *, / and Math.sqrt, which IEEE 754 rounds exactly
// the same everywhere, so positions do not drift between JavaScript engines.

/** Simulated time per tick, in milliseconds. */
export const TICK_MS = 50;

/** Default world seed when the URL has none. */
export const DEFAULT_WORLD_SEED = 7;

/** Largest world seed accepted, so that it fits an unsigned 32-bit integer. */
export const MAX_WORLD_SEED = 0xffff_ffff;

export const CHARACTERS = [
  { name: 'Lily', color: 0xf28c52, shape: 'capsule' },
  { name: 'Ben', color: 0x4f7fd6, shape: 'box' },
  { name: 'Mia', color: 0xc75fb8, shape: 'cone' },
  { name: 'Tom', color: 0x3fa66b, shape: 'cylinder' },
];

export const QUESTIONS = [
  'Where is the ball?',
  'Do you want to play?',
  'What did the cat find?',
  'Can we go to the park?',
  'Why is the sky blue?',
  'Who made the big cake?',
  'Will you be my friend?',
  'What is in the red box?',
  'Where did the bird go?',
  'Can you help me find my toy?',
];

// Walkable area, in scene units: an ellipse that stays inside the camera's view.
const AREA_RADIUS_X = 6.2;
const AREA_RADIUS_Z = 3.4;
// Walking speed, in scene units per tick (1.3 units per second).
const WALK_STEP = 0.065;
// Distance at which a walker counts as arrived at its target, in scene units.
const ARRIVE_DISTANCE = 0.1;
// Centre distance at which two free characters meet, in scene units.
const MEET_DISTANCE = 1.5;
// Idle pause after reaching a target: uniform in [IDLE_MIN_TICKS, IDLE_MAX_TICKS).
const IDLE_MIN_TICKS = 10;
const IDLE_MAX_TICKS = 50;

/** Ticks from the question to the answer request (1.2 s). */
export const ASK_TICKS = 24;
/** Ticks from the question to the parting (6 s). */
export const TALK_TICKS = 120;
// Ticks after a parting before the same pair can meet again (20 s), and before
// either of them can meet anyone (2 s).
const PAIR_COOLDOWN_TICKS = 400;
const SOLO_COOLDOWN_TICKS = 40;

/**
 * Parses the world seed from a URL query: `?seed=N` with N a decimal integer in
 * [0, MAX_WORLD_SEED]. Returns `{ seed, problem }`, where `problem` describes an
 * unusable value (the default is used then) and is null otherwise.
 */
export function parseWorldSeed(params) {
  const raw = params.get('seed');
  if (raw === null || raw === '') {
    return { seed: DEFAULT_WORLD_SEED, problem: null };
  }

  if (!/^\d+$/.test(raw) || Number(raw) > MAX_WORLD_SEED) {
    return {
      seed: DEFAULT_WORLD_SEED,
      problem: `seed=${raw} is not an integer in 0..${MAX_WORLD_SEED}; using ${DEFAULT_WORLD_SEED}`,
    };
  }
  return { seed: Number(raw), problem: null };
}

const MASK_64 = (1n << 64n) - 1n;

// SplitMix64's output function (Steele, Lea and Flood, 2014) on a 64-bit BigInt:
// adds the golden-ratio increment, then mixes with two xor-shift-multiply rounds.
function splitMix64(value) {
  let z = (value + 0x9e3779b97f4a7c15n) & MASK_64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK_64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK_64;
  return z ^ (z >> 31n);
}

/**
 * Derives the sampling seed of a generated line from the world seed, the tick of
 * the request and the speaker's index in CHARACTERS:
 *
 *   z = splitMix64(splitMix64(splitMix64(world) ^ tick) ^ speaker)
 *   seed = z >> 11
 *
 * all on unsigned 64-bit integers. Dropping the low 11 bits leaves 53 bits, so
 * the seed is at most 2^53 - 1 and exact as a JavaScript number.
 */
export function lineSeed(worldSeed, tick, speaker) {
  let z = splitMix64(BigInt(worldSeed));
  z = splitMix64(z ^ BigInt(tick));
  z = splitMix64(z ^ BigInt(speaker));
  return Number(z >> 11n);
}

/**
 * xoshiro128** (Blackman and Vigna, 2018): a 32-bit generator with 128 bits of
 * state, seeded from SplitMix64 outputs of the world seed.
 */
export class Random {
  constructor(seed) {
    const first = splitMix64(BigInt(seed));
    const second = splitMix64(first);
    this.state = new Uint32Array([
      Number(first & 0xffff_ffffn),
      Number(first >> 32n),
      Number(second & 0xffff_ffffn),
      Number(second >> 32n),
    ]);
  }

  /** Returns the next unsigned 32-bit output. */
  nextUint32() {
    const s = this.state;
    const result = Math.imul(rotateLeft(Math.imul(s[1], 5), 7), 9) >>> 0;
    const shifted = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= shifted;
    s[3] = rotateLeft(s[3], 11);
    return result;
  }

  /** Returns a float in [0, 1) with 32 random bits. */
  nextFloat() {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** Returns an integer in [low, high). */
  nextInt(low, high) {
    return low + Math.floor(this.nextFloat() * (high - low));
  }
}

function rotateLeft(value, bits) {
  return (value << bits) | (value >>> (32 - bits));
}

/**
 * The world: characters, their walking targets, encounters and the tick counter.
 * `step()` advances one tick and returns the events of that tick, in order:
 * - `{ type: 'question', tick, encounter, asker, answerer, heard }`
 * - `{ type: 'answer', tick, encounter, asker, answerer, heard, seed }`: request the
 *   answerer's line now, with this seed
 * - `{ type: 'part', tick, encounter, asker, answerer }`
 * where `asker` and `answerer` are indices into CHARACTERS and `encounter` numbers
 * encounters from 0.
 */
export class World {
  constructor(worldSeed) {
    this.seed = worldSeed;
    this.random = new Random(worldSeed);
    this.tick = 0;
    this.encounters = 0;
    this.active = [];
    this.lastMet = new Map();

    this.characters = CHARACTERS.map((character, index) => {
      const start = this.randomPoint();
      return {
        index,
        name: character.name,
        x: start.x,
        z: start.z,
        previousX: start.x,
        previousZ: start.z,
        targetX: start.x,
        targetZ: start.z,
        idleUntil: this.random.nextInt(0, IDLE_MAX_TICKS),
        encounter: null,
        freeFrom: 0,
        partner: null,
      };
    });
  }

  /** Advances one tick and returns its events. */
  step() {
    this.tick += 1;
    const events = [];

    for (const character of this.characters) {
      character.previousX = character.x;
      character.previousZ = character.z;
    }

    this.advanceEncounters(events);
    for (const character of this.characters) {
      if (character.encounter === null) {
        this.walk(character);
      }
    }
    this.startEncounters(events);
    return events;
  }

  advanceEncounters(events) {
    const remaining = [];
    for (const encounter of this.active) {
      const age = this.tick - encounter.startTick;
      const base = {
        tick: this.tick,
        encounter: encounter.id,
        asker: encounter.asker,
        answerer: encounter.answerer,
      };

      if (age === ASK_TICKS) {
        events.push({
          type: 'answer',
          ...base,
          heard: encounter.heard,
          seed: lineSeed(this.seed, this.tick, encounter.answerer),
        });
      }

      if (age >= TALK_TICKS) {
        events.push({ type: 'part', ...base });
        this.part(encounter);
      } else {
        remaining.push(encounter);
      }
    }
    this.active = remaining;
  }

  part(encounter) {
    this.lastMet.set(pairKey(encounter.asker, encounter.answerer), this.tick);
    for (const index of [encounter.asker, encounter.answerer]) {
      const character = this.characters[index];
      character.encounter = null;
      character.partner = null;
      character.freeFrom = this.tick + SOLO_COOLDOWN_TICKS;
      character.idleUntil = this.tick;
      this.pickTarget(character);
    }
  }

  walk(character) {
    if (this.tick < character.idleUntil) {
      return;
    }

    const dx = character.targetX - character.x;
    const dz = character.targetZ - character.z;
    const distance = Math.sqrt(dx * dx + dz * dz);
    if (distance <= ARRIVE_DISTANCE) {
      character.idleUntil = this.tick + this.random.nextInt(IDLE_MIN_TICKS, IDLE_MAX_TICKS);
      this.pickTarget(character);
      return;
    }

    const step = Math.min(WALK_STEP, distance);
    character.x += (dx / distance) * step;
    character.z += (dz / distance) * step;
  }

  // Pairs are checked in index order, and a character joins at most one
  // encounter per tick.
  startEncounters(events) {
    const characters = this.characters;
    for (let i = 0; i < characters.length; i += 1) {
      for (let j = i + 1; j < characters.length; j += 1) {
        const a = characters[i];
        const b = characters[j];
        if (!this.canMeet(a, b)) {
          continue;
        }

        const dx = a.x - b.x;
        const dz = a.z - b.z;
        if (dx * dx + dz * dz > MEET_DISTANCE * MEET_DISTANCE) {
          continue;
        }

        const askerFirst = this.random.nextUint32() % 2 === 0;
        const encounter = {
          id: this.encounters,
          startTick: this.tick,
          asker: askerFirst ? i : j,
          answerer: askerFirst ? j : i,
          heard: QUESTIONS[this.random.nextInt(0, QUESTIONS.length)],
        };
        this.encounters += 1;
        this.active.push(encounter);
        a.encounter = encounter.id;
        b.encounter = encounter.id;
        a.partner = b.index;
        b.partner = a.index;

        events.push({
          type: 'question',
          tick: this.tick,
          encounter: encounter.id,
          asker: encounter.asker,
          answerer: encounter.answerer,
          heard: encounter.heard,
        });
      }
    }
  }

  canMeet(a, b) {
    if (a.encounter !== null || b.encounter !== null) {
      return false;
    }
    if (this.tick < a.freeFrom || this.tick < b.freeFrom) {
      return false;
    }
    const lastMet = this.lastMet.get(pairKey(a.index, b.index));
    return lastMet === undefined || this.tick - lastMet >= PAIR_COOLDOWN_TICKS;
  }

  pickTarget(character) {
    const target = this.randomPoint();
    character.targetX = target.x;
    character.targetZ = target.z;
  }

  // Uniform point in the walkable ellipse, by rejection from its bounding box.
  randomPoint() {
    for (;;) {
      const u = this.random.nextFloat() * 2 - 1;
      const v = this.random.nextFloat() * 2 - 1;
      if (u * u + v * v <= 1) {
        return { x: u * AREA_RADIUS_X, z: v * AREA_RADIUS_Z };
      }
    }
  }
}

function pairKey(a, b) {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}
