use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HI: Better = Better::Higher;
const LO: Better = Better::Lower;

fn brute_force(points: &[Vec<f64>], senses: &[Better]) -> Vec<usize> {
    let pts = oriented(points, senses).unwrap();
    (0..pts.len())
        .filter(|&i| !(0..pts.len()).any(|j| j != i && dominates(&pts[j], &pts[i])))
        .collect()
}

#[test]
fn small_hand_worked_front() {
    // quality (higher) vs latency (lower)
    let pts = vec![
        vec![0.9, 30.0], // A: best quality
        vec![0.8, 10.0], // B: fast and good
        vec![0.7, 12.0], // C: dominated by B
        vec![0.8, 10.0], // D: duplicate of B, also on the front
        vec![0.5, 5.0],  // E: fastest
    ];
    assert_eq!(front(&pts, &[HI, LO]).unwrap(), vec![0, 1, 3, 4]);
}

#[test]
fn matches_brute_force_on_random_sets_with_ties() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for dims in 2..=5 {
        for trial in 0..40 {
            let n = rng.random_range(1..120);
            // few distinct values force ties and duplicates
            let levels = if trial % 2 == 0 { 5 } else { 1000 };
            let pts: Vec<Vec<f64>> = (0..n)
                .map(|_| {
                    (0..dims)
                        .map(|_| rng.random_range(0..levels) as f64)
                        .collect()
                })
                .collect();
            let senses: Vec<Better> = (0..dims)
                .map(|d| if d % 2 == 0 { HI } else { LO })
                .collect();
            assert_eq!(
                front(&pts, &senses).unwrap(),
                brute_force(&pts, &senses),
                "dims {dims} trial {trial}"
            );
        }
    }
}

#[test]
fn bad_input_is_reported() {
    assert_eq!(
        front(&[vec![1.0]], &[HI, LO]).unwrap_err(),
        ParetoError::Dimension {
            index: 0,
            got: 1,
            want: 2
        }
    );
    assert_eq!(
        front(&[vec![1.0, f64::NAN]], &[HI, LO]).unwrap_err(),
        ParetoError::NotFinite {
            index: 0,
            objective: 1
        }
    );
    assert_eq!(front(&[], &[HI, HI]).unwrap(), Vec::<usize>::new());
}

#[test]
fn hypervolume_2d_hand_worked() {
    // maximise both, reference (0, 0): points (3,1), (2,2), (1,3)
    // staircase area = 3*1 + 2*(2-1) + 1*(3-2) = 6
    let pts = vec![vec![3.0, 1.0], vec![2.0, 2.0], vec![1.0, 3.0]];
    assert_eq!(hypervolume(&pts, &[HI, HI], &[0.0, 0.0]).unwrap(), 6.0);
    // a dominated point adds nothing
    let mut with_dominated = pts.clone();
    with_dominated.push(vec![1.0, 1.0]);
    assert_eq!(
        hypervolume(&with_dominated, &[HI, HI], &[0.0, 0.0]).unwrap(),
        6.0
    );
    // minimise latency: (quality 0.8, latency 10), reference (0.5, 30) -> 0.3 * 20 = 6
    let hv = hypervolume(&[vec![0.8, 10.0]], &[HI, LO], &[0.5, 30.0]).unwrap();
    assert!((hv - 6.0).abs() < 1e-12, "{hv}");
    // points not better than the reference count for nothing
    assert_eq!(
        hypervolume(&[vec![0.4, 10.0]], &[HI, LO], &[0.5, 30.0]).unwrap(),
        0.0
    );
}

#[test]
fn hypervolume_3d_hand_worked() {
    // one box 2x3x4 = 24
    assert_eq!(
        hypervolume(&[vec![2.0, 3.0, 4.0]], &[HI; 3], &[0.0; 3]).unwrap(),
        24.0
    );
    // two boxes (2,2,1) and (1,1,3): union = 4 + 3 - overlap(1x1x1) = 6
    let pts = vec![vec![2.0, 2.0, 1.0], vec![1.0, 1.0, 3.0]];
    assert_eq!(hypervolume(&pts, &[HI; 3], &[0.0; 3]).unwrap(), 6.0);
    assert_eq!(
        hypervolume(&pts, &[HI; 3], &[0.0; 2]).unwrap_err(),
        ParetoError::RefDimension { got: 2, want: 3 }
    );
    assert_eq!(
        hypervolume(&[vec![1.0; 4]], &[HI; 4], &[0.0; 4]).unwrap_err(),
        ParetoError::HypervolumeDims(4)
    );
}

#[test]
fn hypervolume_3d_mixed_senses_dominated_and_outside_points() {
    // quality (higher), latency (lower), memory (lower); reference (0, 10, 8).
    // Shifted to "higher is better" from the reference: q - 0, 10 - lat, 8 - mem.
    //   X: (2, 4, 1) -> box (2, 6, 7)
    //   Y: (3, 8, 4) -> box (3, 2, 4)
    //   Z: (1, 9, 7) -> box (1, 1, 1), inside X's box: adds nothing
    //   W: (5, 12, 1) -> latency worse than the reference: counts for nothing
    // Union of X and Y: 2*6*7 + 3*2*4 - overlap (2*2*4) = 84 + 24 - 16 = 92.
    let pts = vec![
        vec![2.0, 4.0, 1.0],
        vec![3.0, 8.0, 4.0],
        vec![1.0, 9.0, 7.0],
        vec![5.0, 12.0, 1.0],
    ];
    let senses = [HI, LO, LO];
    let hv = hypervolume(&pts, &senses, &[0.0, 10.0, 8.0]).unwrap();
    assert!((hv - 92.0).abs() < 1e-12, "{hv}");
    // The front ignores the reference: W has the best quality and memory, so it is on the
    // front; Z is dominated by X.
    assert_eq!(front(&pts, &senses).unwrap(), vec![0, 1, 3]);
    // Exact duplicates of a front point are all on the front (2-D and N-D alike).
    let dup = vec![
        vec![1.0, 1.0, 1.0],
        vec![1.0, 1.0, 1.0],
        vec![0.0, 2.0, 2.0],
    ];
    assert_eq!(front(&dup, &senses).unwrap(), vec![0, 1]);
}

#[test]
fn an_overflowing_hypervolume_is_an_error() {
    let senses = [Better::Higher, Better::Higher];
    let pts = vec![vec![f64::MAX, f64::MAX]];
    assert_eq!(
        hypervolume(&pts, &senses, &[-f64::MAX, -f64::MAX]).unwrap_err(),
        ParetoError::Overflow
    );
    let pts3 = vec![vec![1e200, 1e200, 1e200]];
    assert_eq!(
        hypervolume(&pts3, &[Better::Higher; 3], &[0.0; 3]).unwrap_err(),
        ParetoError::Overflow
    );
}
