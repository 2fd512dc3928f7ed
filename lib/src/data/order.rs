//! Which items an epoch visits, in which order: shuffled or not, the last partial batch dropped or
//! not, and - in data-parallel training - only this rank's share. Both loaders (files and
//! tensors) use it, so a shard means the same thing for either.

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// One rank's share of every epoch (PyTorch's `DistributedSampler` contract): the epoch's order
/// is padded by repeating its first items to a multiple of `world`, and rank `r` takes positions
/// `r, r + world, r + 2 world, ...`. With a per-rank batch of `bs`, the ranks' batch `i`
/// together are the items of the unsharded batch `i` of size `bs * world`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl Shard {
    /// Items in each rank's share of `n` items (all ranks get the same number).
    pub fn len(&self, n: usize) -> usize {
        n.div_ceil(self.world)
    }

    /// Whether the share is empty (no items at all).
    pub fn is_empty(&self, n: usize) -> bool {
        self.len(n) == 0
    }
}

/// Items per epoch for this rank before batching.
pub(crate) fn epoch_items(n: usize, shard: Option<Shard>) -> usize {
    shard.map_or(n, |s| s.len(n))
}

/// Batches per epoch.
pub(crate) fn n_batches(n: usize, bs: usize, drop_last: bool, shard: Option<Shard>) -> usize {
    let n = epoch_items(n, shard);
    if drop_last {
        n / bs
    } else {
        n.div_ceil(bs)
    }
}

/// The item indices of epoch `epoch`, in order. The shuffle depends only on (`seed`, `epoch`),
/// so every rank computes the same one before taking its share.
pub(crate) fn epoch_order(
    n: usize,
    shuffle: bool,
    seed: u64,
    epoch: u64,
    bs: usize,
    drop_last: bool,
    shard: Option<Shard>,
) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        idx.shuffle(&mut rng);
    }
    if let Some(s) = shard {
        let padded = s.len(n) * s.world;
        let mut i = 0;
        while idx.len() < padded && n > 0 {
            idx.push(idx[i % n]);
            i += 1;
        }
        idx = idx.into_iter().skip(s.rank).step_by(s.world).collect();
    }
    if drop_last {
        idx.truncate(n_batches(n, bs, true, shard) * bs);
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_interleave_into_the_full_batches() {
        let (n, bs, world) = (23, 3, 2);
        let full = epoch_order(n, true, 7, 1, bs * world, true, None);
        let parts: Vec<Vec<usize>> = (0..world)
            .map(|rank| epoch_order(n, true, 7, 1, bs, true, Some(Shard { rank, world })))
            .collect();
        assert_eq!(parts[0].len(), parts[1].len());
        for (i, batch) in full.chunks(bs * world).enumerate() {
            let mut joined: Vec<usize> = parts
                .iter()
                .flat_map(|p| p[i * bs..(i + 1) * bs].to_vec())
                .collect();
            let mut want = batch.to_vec();
            joined.sort();
            want.sort();
            assert_eq!(joined, want, "batch {i}");
        }
    }

    #[test]
    fn shards_cover_everything_padding_with_the_first_items() {
        let (n, world) = (10, 3);
        let mut all: Vec<usize> = (0..world)
            .flat_map(|rank| epoch_order(n, false, 0, 0, 4, false, Some(Shard { rank, world })))
            .collect();
        assert_eq!(all.len(), 12);
        all.sort();
        assert_eq!(all, vec![0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(n_batches(n, 4, false, Some(Shard { rank: 0, world })), 1);
        assert_eq!(n_batches(n, 4, true, Some(Shard { rank: 0, world })), 1);
        assert_eq!(n_batches(n, 5, true, Some(Shard { rank: 0, world })), 0);
    }
}
