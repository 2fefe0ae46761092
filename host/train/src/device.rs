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

/// The device to use: `auto` means CUDA when available. Asking for a CUDA device that is not
/// there is an error, not a silent fallback.
pub fn resolve(name: &str) -> Result<Device, String> {
    let wanted = parse(name)?;
    if wanted != Some(Device::Cpu) {
        load_cuda();
    }
    match wanted {
        None => Ok(Device::cuda_if_available()),
        Some(Device::Cuda(n)) => {
            let count = tch::Cuda::device_count() as usize;
            if n < count {
                Ok(Device::Cuda(n))
            } else {
                Err(format!(
                    "device cuda:{n} requested, {count} CUDA device(s) available"
                ))
            }
        }
        Some(d) => Ok(d),
    }
}
