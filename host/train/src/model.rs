//! Models (`mlp`, a LeNet-style `cnn`) built with tch, and their parameters as one flat f32
//! vector in a canonical order: variables sorted by name, each flattened row-major. That
//! vector is what aggregators receive, and it loads back exactly.

use crate::job::ModelSpec;
use crate::TrainError;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// How a model's variables start.
#[derive(Clone, Copy)]
enum Start {
    /// tch's default initialisation, from its global seed.
    Random,
    /// Zeros, for a model about to be loaded.
    Zeros,
}

/// A model and its variables.
pub struct Model {
    vs: nn::VarStore,
    net: nn::SequentialT,
    names: Vec<String>,
    input: usize,
}

impl Model {
    /// Builds `spec` for `input` features and `classes` outputs on `device`, with weights
    /// initialised from tch's global seed.
    pub fn new(
        spec: &ModelSpec,
        input: usize,
        classes: usize,
        device: Device,
    ) -> Result<Self, TrainError> {
        Self::build(spec, input, classes, device, Start::Random)
    }

    /// Builds `spec` holding `flat` (from [`Model::flat`] of the same architecture). The
    /// variables start as zeros, not random draws that would be overwritten at once: a round's
    /// worker and evaluation load a model every round, and drawing ~1M random weights costs
    /// milliseconds on one core.
    pub fn loaded(
        spec: &ModelSpec,
        input: usize,
        classes: usize,
        device: Device,
        flat: &[f32],
    ) -> Result<Self, TrainError> {
        let mut m = Self::build(spec, input, classes, device, Start::Zeros)?;
        m.load_flat(flat)?;
        Ok(m)
    }

    fn build(
        spec: &ModelSpec,
        input: usize,
        classes: usize,
        device: Device,
        start: Start,
    ) -> Result<Self, TrainError> {
        let linear = match start {
            Start::Random => nn::LinearConfig::default(),
            Start::Zeros => nn::LinearConfig {
                ws_init: nn::Init::Const(0.0),
                bs_init: Some(nn::Init::Const(0.0)),
                bias: true,
            },
        };
        let conv = match start {
            Start::Random => nn::ConvConfig::default(),
            Start::Zeros => nn::ConvConfig {
                ws_init: nn::Init::Const(0.0),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        };
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net = match spec {
            ModelSpec::Mlp { hidden } => {
                let mut net = nn::seq_t();
                let mut width = input;
                for (i, &h) in hidden.iter().enumerate() {
                    net = net
                        .add(nn::linear(
                            &root / format!("fc{i}"),
                            width as i64,
                            h as i64,
                            linear,
                        ))
                        .add_fn(|x| x.relu());
                    width = h;
                }
                net.add(nn::linear(
                    &root / "out",
                    width as i64,
                    classes as i64,
                    linear,
                ))
            }
            ModelSpec::Cnn { channels } => {
                let side = (input as f64).sqrt() as i64;
                if side * side != input as i64 || side < 4 {
                    return Err(TrainError::Job(format!(
                        "model `cnn` needs square images: {input} features is not side x side (side >= 4)"
                    )));
                }
                let (c1, c2) = (channels[0] as i64, channels[1] as i64);
                let conv = nn::ConvConfig { padding: 1, ..conv };
                let pooled = side / 2 / 2;
                nn::seq_t()
                    .add_fn(move |x| x.view([-1, 1, side, side]))
                    .add(nn::conv2d(&root / "conv1", 1, c1, 3, conv))
                    .add_fn(|x| x.relu().max_pool2d_default(2))
                    .add(nn::conv2d(&root / "conv2", c1, c2, 3, conv))
                    .add_fn(|x| x.relu().max_pool2d_default(2))
                    .add_fn(|x| x.flatten(1, -1))
                    .add(nn::linear(&root / "fc", c2 * pooled * pooled, 64, linear))
                    .add_fn(|x| x.relu())
                    .add(nn::linear(&root / "out", 64, classes as i64, linear))
            }
        };
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        Ok(Self {
            vs,
            net,
            names,
            input,
        })
    }

    /// Device the model lives on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The variable store (for optimizers).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Variable names in canonical order, with their shapes.
    pub fn layout(&self) -> Vec<(String, Vec<i64>)> {
        let vars = self.vs.variables();
        self.names
            .iter()
            .map(|n| (n.clone(), vars[n].size()))
            .collect()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.vs.variables().values().map(|t| t.numel()).sum()
    }

    /// All parameters as one vector, in canonical order.
    pub fn flat(&self) -> Vec<f32> {
        let vars = self.vs.variables();
        let mut out = Vec::with_capacity(self.num_params());
        for n in &self.names {
            let t = vars[n]
                .detach()
                .to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .flatten(0, -1);
            let v: Vec<f32> = Vec::try_from(&t).expect("a float tensor");
            out.extend_from_slice(&v);
        }
        out
    }

    /// Loads parameters from a vector made by [`Model::flat`] (of the same architecture).
    pub fn load_flat(&mut self, flat: &[f32]) -> Result<(), TrainError> {
        let expected = self.num_params();
        if flat.len() != expected {
            return Err(TrainError::Model(format!(
                "{} parameters given, the model has {expected}",
                flat.len()
            )));
        }
        let vars = self.vs.variables();
        let mut at = 0;
        tch::no_grad(|| {
            for n in &self.names {
                let mut var = vars[n].shallow_clone();
                let k = var.numel();
                let src = Tensor::from_slice(&flat[at..at + k])
                    .view(var.size().as_slice())
                    .to_device(var.device());
                var.copy_(&src);
                at += k;
            }
        });
        Ok(())
    }

    /// Logits for a batch of rows.
    pub fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    /// Input width.
    pub fn input(&self) -> usize {
        self.input
    }
}
