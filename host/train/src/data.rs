//! Tabular data sets: the embedded UCI digits, a CSV loader whose errors name the file, line
//! and column, a seeded train/test split, and sharding (iid or skewed by label).

use crate::TrainError;
use std::path::Path;

/// A table: `rows * width` f32 features, row-major, and one label per row in `0..classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Feature column names.
    pub columns: Vec<String>,
    /// Row-major features.
    pub features: Vec<f32>,
    /// One label per row.
    pub labels: Vec<i32>,
    /// Number of classes (labels are expected in `0..classes`).
    pub classes: usize,
}

/// The UCI ML hand-written digits (1,797 images of 8x8 pixels, values 0-16, 10 classes), as
/// shipped by scikit-learn (`sklearn/datasets/data/digits.csv.gz`, BSD-3-Clause; original:
/// E. Alpaydin, C. Kaynak, UCI Machine Learning Repository, CC BY 4.0). Embedded in the binary.
pub const DIGITS_CSV: &str = include_str!("../data/digits.csv");

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of feature columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The embedded digits data set.
    pub fn digits() -> Self {
        Self::parse_csv(DIGITS_CSV, "<embedded digits.csv>", "label", None)
            .expect("the embedded digits CSV is valid")
    }

    /// Loads a CSV file with a header row; `label` names the label column (integers); every
    /// other column is a feature (numbers; empty cells and `nan` become NaN, for a cleaner to
    /// handle). `classes` defaults to the largest label + 1.
    pub fn load_csv(path: &Path, label: &str, classes: Option<usize>) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
        Self::parse_csv(&text, &path.display().to_string(), label, classes)
    }

    /// Parses CSV text (see [`Dataset::load_csv`]); `origin` names it in errors.
    pub fn parse_csv(
        text: &str,
        origin: &str,
        label: &str,
        classes: Option<usize>,
    ) -> Result<Self, TrainError> {
        let err = |line: usize, col: Option<(usize, &str)>, msg: String| {
            TrainError::Data(match col {
                Some((c, name)) => format!("{origin}:{line}: column {c} (`{name}`): {msg}"),
                None => format!("{origin}:{line}: {msg}"),
            })
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| err(1, None, "empty file, expected a header row".into()))?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let label_col = names.iter().position(|n| *n == label).ok_or_else(|| {
            err(
                1,
                None,
                format!(
                    "no label column `{label}` in the header ({})",
                    names.join(", ")
                ),
            )
        })?;
        let columns: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != label_col)
            .map(|(_, n)| n.to_string())
            .collect();
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in lines {
            let line_no = i + 1;
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                return Err(err(
                    line_no,
                    None,
                    format!("{} cells, the header has {}", cells.len(), names.len()),
                ));
            }
            for (c, cell) in cells.iter().enumerate() {
                if c == label_col {
                    let v: i32 = cell.parse().map_err(|_| {
                        err(
                            line_no,
                            Some((c + 1, names[c])),
                            format!("label `{cell}` is not an integer"),
                        )
                    })?;
                    labels.push(v);
                } else if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                    features.push(f32::NAN);
                } else {
                    let v: f32 = cell.parse().map_err(|_| {
                        err(
                            line_no,
                            Some((c + 1, names[c])),
                            format!("`{cell}` is not a number"),
                        )
                    })?;
                    features.push(v);
                }
            }
        }
        if labels.is_empty() {
            return Err(err(1, None, "no data rows".into()));
        }
        let classes = classes
            .unwrap_or_else(|| labels.iter().copied().max().unwrap_or(0).max(0) as usize + 1);
        Ok(Self {
            columns,
            features,
            labels,
            classes,
        })
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Self {
        let w = self.width();
        let mut features = Vec::with_capacity(idx.len() * w);
        for &i in idx {
            features.extend_from_slice(&self.features[i * w..(i + 1) * w]);
        }
        Self {
            columns: self.columns.clone(),
            features,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes,
        }
    }

    /// Deterministic shuffled split: `(train, test)` with `test_fraction` of the rows in test.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Self, Self) {
        let mut idx: Vec<usize> = (0..self.rows()).collect();
        shuffle(&mut idx, seed);
        let n_test = ((self.rows() as f64) * test_fraction).round() as usize;
        let (test, train) = idx.split_at(n_test.min(self.rows()));
        (self.select(train), self.select(test))
    }

    /// `n` shards. `skew` 0.0 is iid (a shuffled deal); 1.0 gives each shard a disjoint
    /// slice of the rows sorted by label (each shard sees few classes); values in between mix
    /// the two (a `skew` share of every shard's rows comes from the label-sorted order).
    pub fn shards(&self, n: usize, skew: f64, seed: u64) -> Vec<Self> {
        let n = n.max(1);
        let mut idx: Vec<usize> = (0..self.rows()).collect();
        shuffle(&mut idx, seed);
        let skew = skew.clamp(0.0, 1.0);
        let n_sorted = (self.rows() as f64 * skew).round() as usize;
        let (sorted_part, iid_part) = idx.split_at_mut(n_sorted);
        sorted_part.sort_by_key(|&i| (self.labels[i], i));
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        // Label-sorted rows in contiguous blocks, iid rows dealt round-robin.
        let per = sorted_part.len().div_ceil(n).max(1);
        for (k, block) in sorted_part.chunks(per).enumerate() {
            out[k].extend_from_slice(block);
        }
        for (k, &i) in iid_part.iter().enumerate() {
            out[k % n].push(i);
        }
        out.iter().map(|ix| self.select(ix)).collect()
    }
}

/// Fisher-Yates with a seeded xorshift64* generator.
pub fn shuffle(v: &mut [usize], seed: u64) {
    let mut s = seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for i in (1..v.len()).rev() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
}
