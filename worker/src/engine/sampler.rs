//! Top-k sampling with temperature, from a PRNG owned by the sampler.
//!
//! One step, given the logits of the last position:
//! 1. Keep the `top_k` largest logits. Ties are broken by the lower token id, so the
//!    candidate list is a pure function of the logits.
//! 2. Weigh each candidate `i` by `exp((logit_i - logit_max) / temperature)`, computed in
//!    f64 from the f32 logits, and normalise the weights to probabilities.
//! 3. Draw `u` in [0, 1) as the top 53 bits of one `next_u64` of ChaCha8
//!    (`rand_chacha::ChaCha8Rng::seed_from_u64(seed)`, rand_core 0.9), times 2^-53.
//! 4. Return the first candidate, in descending logit order, whose cumulative
//!    probability exceeds `u`; the last candidate if rounding leaves none.
//!
//! Each request builds its own sampler from its seed, so a line never depends on what
//! ran before it.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::WorkerError;

/// A seeded top-k / temperature sampler.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: ChaCha8Rng,
    top_k: usize,
    temperature: f64,
    candidates: Vec<(f32, u32)>,
}

impl Sampler {
    /// Creates a sampler; `top_k` must be at least 1 and `temperature` finite and above 0
    /// (the engine checks both before it gets here).
    pub fn new(seed: u64, top_k: usize, temperature: f32) -> Self {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            top_k: top_k.max(1),
            temperature: f64::from(temperature),
            candidates: Vec::with_capacity(top_k.max(1) + 1),
        }
    }

    /// Draws the next token id from the logits of the last position.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, WorkerError> {
        self.select_top_k(logits)?;
        let Some(&(max_logit, _)) = self.candidates.first() else {
            return Err(WorkerError::InvalidLogits("the logits are empty".into()));
        };

        let weights: Vec<f64> = self
            .candidates
            .iter()
            .map(|&(logit, _)| ((f64::from(logit) - f64::from(max_logit)) / self.temperature).exp())
            .collect();
        let total: f64 = weights.iter().sum();

        let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let mut cumulative = 0.0;
        for (&(_, id), weight) in self.candidates.iter().zip(&weights) {
            cumulative += weight / total;
            if u < cumulative {
                return Ok(id);
            }
        }
        let last = self.candidates.last().map(|&(_, id)| id);
        last.ok_or_else(|| WorkerError::InvalidLogits("no candidate was kept".into()))
    }

    /// Fills `self.candidates` with the `top_k` best (logit, id) pairs, best first.
    fn select_top_k(&mut self, logits: &[f32]) -> Result<(), WorkerError> {
        self.candidates.clear();
        for (index, &logit) in logits.iter().enumerate() {
            if logit.is_nan() {
                return Err(WorkerError::InvalidLogits(format!(
                    "logit of token {index} is NaN"
                )));
            }
            let id = index as u32;
            let full = self.candidates.len() == self.top_k;
            if full && !ranks_before((logit, id), self.candidates[self.top_k - 1]) {
                continue;
            }
            let position = self
                .candidates
                .partition_point(|&other| ranks_before(other, (logit, id)));
            self.candidates.insert(position, (logit, id));
            self.candidates.truncate(self.top_k);
        }
        Ok(())
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
            let mut sampler = Sampler::new(seed, 40, 0.9);
            steps
                .iter()
                .map(|l| sampler.sample(l).unwrap())
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
        let mut sampler = Sampler::new(1, 1, 0.9);
        for _ in 0..20 {
            assert_eq!(sampler.sample(&logits).unwrap(), 42);
        }
    }

    #[test]
    fn ties_prefer_lower_id() {
        let logits = vec![1.0f32; 10];
        let mut sampler = Sampler::new(3, 1, 1.0);
        assert_eq!(sampler.sample(&logits).unwrap(), 0);
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
        let mut sampler = Sampler::new(9, 5, 5.0);
        for _ in 0..500 {
            assert!(allowed.contains(&sampler.sample(&logits).unwrap()));
        }
    }

    #[test]
    fn low_temperature_concentrates() {
        let mut logits = vec![0.0f32; 50];
        logits[3] = 1.0;
        let mut sampler = Sampler::new(11, 50, 0.01);
        for _ in 0..100 {
            assert_eq!(sampler.sample(&logits).unwrap(), 3);
        }
    }

    #[test]
    fn nan_logit_rejected() {
        let mut logits = vec![0.0f32; 8];
        logits[5] = f32::NAN;
        let error = Sampler::new(1, 4, 0.9).sample(&logits).unwrap_err();
        assert!(error.to_string().contains("token 5"), "{error}");
    }
}
