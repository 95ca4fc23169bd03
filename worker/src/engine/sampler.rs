//! Top-k sampling with temperature, from a PRNG owned by the sampler.
//!
//! One step, given the logits of the last position:
//! 1. Take the `top_k` + [`CANDIDATE_MARGIN`] largest logits (the KV-cache graph's `TopK`
//!    does this; [`Candidates::top_k`] does it for models that return all logits), round
//!    each to a multiple of `1 / LOGIT_GRID`, order them by rounded logit, descending, then
//!    by lower token id, and keep the first `top_k`.
//! 2. Weigh each candidate `i` by `exp((r_i - r_max) / temperature)` on the rounded
//!    logits, in f64, and normalise the weights to probabilities.
//! 3. Draw `u` in [0, 1) as the top 53 bits of one `next_u64` of ChaCha8
//!    (`rand_chacha::ChaCha8Rng::seed_from_u64(seed)`, rand_core 0.9), times 2^-53.
//! 4. Return the first candidate, in descending logit order, whose cumulative
//!    probability exceeds `u`; the last candidate if rounding leaves none.
//!
//! Each request builds its own sampler from its seed, so a line does not depend on what
//! ran before it.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::WorkerError;

/// The next-token candidates of one step: the top-k logits, best first, and their token
/// ids. Ties in logit are ordered by lower id, as ONNX `TopK` orders them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    /// Logits, in descending order.
    pub logits: Vec<f32>,
    /// Token id of each logit.
    pub ids: Vec<u32>,
}

impl Candidates {
    /// Selects the `k` largest of `logits` (all of them if there are fewer), best first.
    pub fn top_k(logits: &[f32], k: usize) -> Result<Self, WorkerError> {
        let k = k.max(1);
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for (index, &logit) in logits.iter().enumerate() {
            if logit.is_nan() {
                return Err(WorkerError::InvalidLogits(format!(
                    "logit of token {index} is NaN"
                )));
            }
            let id = index as u32;
            if best.len() == k && !ranks_before((logit, id), best[k - 1]) {
                continue;
            }
            let position = best.partition_point(|&other| ranks_before(other, (logit, id)));
            best.insert(position, (logit, id));
            best.truncate(k);
        }
        Ok(Candidates {
            logits: best.iter().map(|&(logit, _)| logit).collect(),
            ids: best.iter().map(|&(_, id)| id).collect(),
        })
    }
}

/// Logits are rounded to multiples of `1 / LOGIT_GRID` before candidates are ranked and
/// weighed. Native ONNX Runtime and onnxruntime-web compute logits that differ by about
/// 1e-6, and with unrounded logits such a difference decides the sample whenever two
/// candidates are that close, most often at the top-k cutoff. After rounding, the two
/// runtimes disagree only when a logit lies within that 1e-6 of a rounding boundary.
/// Rounding to 1/256 moves a logit by at most 0.002, a change in probability of 0.2 %.
pub const LOGIT_GRID: f64 = 256.0;

/// Candidates requested beyond top-k, so that rounding can reorder the cutoff.
pub const CANDIDATE_MARGIN: usize = 8;

/// A seeded temperature sampler over top-k candidates.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: ChaCha8Rng,
    temperature: f64,
}

impl Sampler {
    /// Creates a sampler; `temperature` must be finite and above 0 (the engine checks it
    /// before it gets here).
    pub fn new(seed: u64, temperature: f32) -> Self {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            temperature: f64::from(temperature),
        }
    }

    /// Draws the next token id from the candidates of one step, keeping the `top_k` best
    /// after rounding (see [`LOGIT_GRID`]). `candidates` should hold
    /// [`CANDIDATE_MARGIN`] more than `top_k`, so that logits which tie with the k-th after
    /// rounding are all present.
    pub fn sample(&mut self, candidates: &Candidates, top_k: usize) -> Result<u32, WorkerError> {
        if candidates.logits.len() != candidates.ids.len() {
            return Err(WorkerError::InvalidLogits(format!(
                "{} candidate logits but {} ids",
                candidates.logits.len(),
                candidates.ids.len()
            )));
        }
        if let Some(index) = candidates
            .logits
            .iter()
            .position(|logit| !logit.is_finite())
        {
            return Err(WorkerError::InvalidLogits(format!(
                "logit of candidate {} is {}",
                candidates.ids[index], candidates.logits[index]
            )));
        }

        let mut rounded: Vec<(f64, u32)> = candidates
            .logits
            .iter()
            .zip(&candidates.ids)
            .map(|(&logit, &id)| ((f64::from(logit) * LOGIT_GRID).round() / LOGIT_GRID, id))
            .collect();
        rounded.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        rounded.truncate(top_k.max(1));
        let Some(&(max_logit, _)) = rounded.first() else {
            return Err(WorkerError::InvalidLogits("no candidates".into()));
        };

        let weights: Vec<f64> = rounded
            .iter()
            .map(|&(logit, _)| ((logit - max_logit) / self.temperature).exp())
            .collect();
        let total: f64 = weights.iter().sum();

        let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let mut cumulative = 0.0;
        for (&(_, id), weight) in rounded.iter().zip(&weights) {
            cumulative += weight / total;
            if u < cumulative {
                return Ok(id);
            }
        }
        let last = rounded.last().map(|&(_, id)| id);
        last.ok_or_else(|| WorkerError::InvalidLogits("no candidates".into()))
    }
}

/// Orders candidates by logit, descending, then by id, ascending.
fn ranks_before(a: (f32, u32), b: (f32, u32)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len)
            .map(|_| (rng.next_u32() % 1000) as f32 / 100.0)
            .collect()
    }

    #[test]
    fn same_seed_same_ids() {
        let steps: Vec<Vec<f32>> = (0..60).map(|step| logits(50257, step)).collect();
        let run = |seed| {
            let mut sampler = Sampler::new(seed, 0.9);
            steps
                .iter()
                .map(|l| {
                    sampler
                        .sample(&Candidates::top_k(l, 48).unwrap(), 40)
                        .unwrap()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut logits = vec![0.0f32; 100];
        logits[42] = 3.0;
        logits[17] = 2.9;
        let mut sampler = Sampler::new(1, 0.9);
        for _ in 0..20 {
            assert_eq!(
                sampler
                    .sample(&Candidates::top_k(&logits, 9).unwrap(), 1)
                    .unwrap(),
                42
            );
        }
    }

    #[test]
    fn ties_prefer_lower_id() {
        let logits = vec![1.0f32; 10];
        let candidates = Candidates::top_k(&logits, 3).unwrap();
        assert_eq!(candidates.ids, [0, 1, 2]);
    }

    #[test]
    fn samples_stay_in_top_k() {
        let logits = logits(1000, 5);
        let mut sorted: Vec<(f32, u32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i as u32))
            .collect();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let allowed: Vec<u32> = sorted[..5].iter().map(|&(_, id)| id).collect();
        let candidates = Candidates::top_k(&logits, 5).unwrap();
        assert_eq!(candidates.ids, allowed);
        let mut sampler = Sampler::new(9, 5.0);
        for _ in 0..500 {
            assert!(allowed.contains(&sampler.sample(&candidates, 5).unwrap()));
        }
    }

    #[test]
    fn near_equal_logits_tie_by_id() {
        // Logits 1e-6 apart, as two runtimes may compute them, rank by id after rounding.
        for bump in [-1e-6f32, 0.0, 1e-6] {
            let mut logits = vec![0.0f32; 16];
            logits[3] = 2.0;
            logits[7] = 2.0 + bump;
            let candidates = Candidates::top_k(&logits, 9).unwrap();
            let mut sampler = Sampler::new(5, 0.9);
            assert_eq!(sampler.sample(&candidates, 1).unwrap(), 3, "bump {bump}");
        }
    }

    #[test]
    fn low_temperature_concentrates() {
        let mut logits = vec![0.0f32; 50];
        logits[3] = 1.0;
        let candidates = Candidates::top_k(&logits, 50).unwrap();
        let mut sampler = Sampler::new(11, 0.01);
        for _ in 0..100 {
            assert_eq!(sampler.sample(&candidates, 50).unwrap(), 3);
        }
    }

    #[test]
    fn nan_logit_rejected() {
        let mut logits = vec![0.0f32; 8];
        logits[5] = f32::NAN;
        let error = Candidates::top_k(&logits, 4).unwrap_err();
        assert!(error.to_string().contains("token 5"), "{error}");
    }
}
