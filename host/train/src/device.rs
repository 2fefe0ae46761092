//! `auto | cpu | cuda | cuda:N`.

use tch::Device;

/// Parses a device name; `auto` is resolved by [`resolve`].
pub fn parse(name: &str) -> Result<Option<Device>, String> {
    match name {
        "auto" => Ok(None),
        "cpu" => Ok(Some(Device::Cpu)),
        "cuda" => Ok(Some(Device::Cuda(0))),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Some(Device::Cuda(n))),
            _ => Err(format!(
                "device `{other}`: expected auto, cpu, cuda or cuda:N"
            )),
        },
    }
}

/// Loads libtorch's CUDA half once, if this libtorch has one. The linker drops
/// `libtorch_cuda.so` from binaries (no symbol of it is used directly), and without it loaded
/// libtorch reports no CUDA even on a GPU machine; loading it only when a job may use CUDA
/// keeps CPU-only commands from paying for the CUDA libraries at start-up.
pub fn load_cuda() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        // SAFETY: dlopen with a constant, NUL-terminated name; the handle is kept for the
        // life of the process (never dlclosed).
        let handle = unsafe {
            libc::dlopen(
                c"libtorch_cuda.so".as_ptr(),
                libc::RTLD_NOW | libc::RTLD_GLOBAL,
            )
        };
        if handle.is_null() {
            tracing::debug!("libtorch_cuda.so not loaded: CUDA unavailable");
        }
        !handle.is_null()
    })
}

/// Sets libtorch's intra-op threads for the calling thread, unless they are already `n`.
/// Setting them is not free even when unchanged: libtorch also clears oneDNN's cache of
/// compiled kernels, which a task on a reused thread would then build again.
pub fn set_threads(n: usize) {
    let n = n.clamp(1, i32::MAX as usize) as i32;
    if tch::get_num_threads() != n {
        tch::set_num_threads(n);
    }
}

/// Whether this machine has an NVIDIA driver: its user-space library (`libcuda.so.1`) can be
/// opened. Checked once, before anything of CUDA is loaded: on a machine without a driver
/// (most edge boards, every CPU-only server) loading libtorch's CUDA half only to find no
/// GPU costs ~350 MB of resident memory and ~0.4 s.
pub fn nvidia_driver() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: dlopen with a constant, NUL-terminated name; a handle that opened is kept
        // for the life of the process (libtorch's CUDA half would load it anyway).
        let handle = unsafe { libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY) };
        if handle.is_null() {
            tracing::debug!("no NVIDIA driver (libcuda.so.1): CUDA is not loaded");
        }
        !handle.is_null()
    })
}

/// The device to use: `auto` means CUDA when the machine has an NVIDIA driver and libtorch
/// sees a GPU, the CPU otherwise (without loading CUDA at all when there is no driver).
/// Asking for a CUDA device that is not there is an error, not a silent fallback.
pub fn resolve(name: &str) -> Result<Device, String> {
    let wanted = parse(name)?;
    match wanted {
        None if !nvidia_driver() => Ok(Device::Cpu),
        None => {
            load_cuda();
            Ok(Device::cuda_if_available())
        }
        Some(Device::Cuda(n)) => {
            load_cuda();
            let count = tch::Cuda::device_count() as usize;
            if n < count {
                Ok(Device::Cuda(n))
            } else {
                let driver = if nvidia_driver() {
                    ""
                } else {
                    " (no NVIDIA driver: libcuda.so.1 cannot be opened)"
                };
                Err(format!(
                    "device cuda:{n} requested, {count} CUDA device(s) available{driver}"
                ))
            }
        }
        Some(d) => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `auto` loads libtorch's CUDA half only where there is a driver to use it: on this
    /// machine's kind (no driver) the process never maps `libtorch_cuda.so`; with a driver
    /// it does and `auto` is whatever libtorch finds.
    #[test]
    fn auto_loads_cuda_only_with_an_nvidia_driver() {
        let device = resolve("auto").unwrap();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mapped = maps.contains("libtorch_cuda.so");
        if nvidia_driver() {
            assert!(mapped, "a driver is there: CUDA is loaded");
        } else {
            assert_eq!(device, Device::Cpu);
            assert!(!mapped, "no driver: libtorch_cuda.so stays unloaded");
            let e = resolve("cuda").unwrap_err();
            assert!(e.contains("no NVIDIA driver"), "{e}");
        }
    }
}
