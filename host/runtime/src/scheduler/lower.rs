//! The `pending` argument of `schedule`, lowered into the guest with a fast path for its task
//! list.
//!
//! wasmtime's derived lowering stores a list of records one field at a time, and every store
//! looks the guest memory up again through the store and computes the field's offset anew:
//! ~40 ns per task of nine fields, about as much as the whole decision of a scheduler like
//! `priority` spends per task (measured by `infra-bench --only scheduling`). A task holds only numbers, so its
//! canonical-ABI image is a fixed layout: [`lower_tasks`] asks the guest for the list's memory
//! once, borrows that memory once and writes every task at offsets computed once from the
//! field types' ABI. `jobs`, `nodes` and `holdings` go through wasmtime's own code.
//!
//! [`FastPending`] has the canonical type of [`Pending`] (its type check is `Pending`'s), so it
//! can stand in for it when calling the `schedule` export. The test
//! `every_field_of_pending_reaches_the_guest_intact` (tests/schedulers.rs) sends every field
//! through a guest that logs what it received.

use super::{Pending, Resources, Task};
use std::mem::MaybeUninit;
use wasmtime::component::__internal::{
    bad_type_info, CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Lower};
use wasmtime::ValRaw;

/// `pending`, lowered like [`Pending`] except for the fast task list.
pub(crate) struct FastPending<'a>(pub(crate) &'a Pending);

/// The flat form of `pending`: a (pointer, length) pair per list, in field order.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct FlatPending {
    jobs: [ValRaw; 2],
    tasks: [ValRaw; 2],
    nodes: [ValRaw; 2],
    holdings: [ValRaw; 2],
    _align: [ValRaw; 0],
}

// SAFETY: the ABI and the type check are `Pending`'s, and the lowering below writes what
// `Pending`'s derived lowering writes (four lists, in field order).
unsafe impl ComponentType for FastPending<'_> {
    type Lower = FlatPending;
    const ABI: CanonicalAbiInfo = <Pending as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Pending as ComponentType>::typecheck(ty, types)
    }
}

/// The four field types of the `pending` record type `ty`.
fn field_types<T>(cx: &LowerContext<'_, T>, ty: InterfaceType) -> [InterfaceType; 4] {
    let InterfaceType::Record(r) = ty else {
        bad_type_info()
    };
    let f = &cx.types[r].fields;
    assert_eq!(f.len(), 4, "`pending` has four fields");
    [f[0].ty, f[1].ty, f[2].ty, f[3].ty]
}

fn flat_list<T, L: Lower<Lower = [ValRaw; 2]> + ?Sized>(
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    list: &L,
) -> wasmtime::Result<[ValRaw; 2]> {
    let mut dst = MaybeUninit::<[ValRaw; 2]>::uninit();
    list.linear_lower_to_flat(cx, ty, &mut dst)?;
    // SAFETY: a successful `linear_lower_to_flat` initialises `dst`.
    Ok(unsafe { dst.assume_init() })
}

// SAFETY: see `ComponentType` above.
unsafe impl Lower for FastPending<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<FlatPending>,
    ) -> wasmtime::Result<()> {
        let [jobs, tasks, nodes, holdings] = field_types(cx, ty);
        let jobs = flat_list(cx, jobs, self.0.jobs.as_slice())?;
        let (ptr, len) = lower_tasks(cx, tasks, &self.0.tasks)?;
        // As wasmtime writes a list's pair: always as 64-bit integers.
        let tasks = [ValRaw::i64(ptr as i64), ValRaw::i64(len as i64)];
        let nodes = flat_list(cx, nodes, self.0.nodes.as_slice())?;
        let holdings = flat_list(cx, holdings, self.0.holdings.as_slice())?;
        dst.write(FlatPending {
            jobs,
            tasks,
            nodes,
            holdings,
            _align: [],
        });
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let [jobs, tasks, nodes, holdings] = field_types(cx, ty);
        let list = <[Task] as ComponentType>::ABI;
        let mut at = offset;
        let o = [(); 4].map(|_| list.next_field32_size(&mut at));
        self.0
            .jobs
            .as_slice()
            .linear_lower_to_memory(cx, jobs, o[0])?;
        let (ptr, len) = lower_tasks(cx, tasks, &self.0.tasks)?;
        *cx.get::<4>(o[1]) = u32::try_from(ptr)?.to_le_bytes();
        *cx.get::<4>(o[1] + 4) = u32::try_from(len)?.to_le_bytes();
        self.0
            .nodes
            .as_slice()
            .linear_lower_to_memory(cx, nodes, o[2])?;
        self.0
            .holdings
            .as_slice()
            .linear_lower_to_memory(cx, holdings, o[3])
    }
}

/// Offsets of a task's fields in its canonical-ABI image, in WIT field order.
struct TaskLayout {
    size: usize,
    id: usize,
    job: usize,
    priority: usize,
    cpu_millis: usize,
    memory_mib: usize,
    gpus: usize,
    est_duration_ms: usize,
    input_bytes: usize,
    attempts: usize,
}

impl TaskLayout {
    fn new() -> Self {
        let mut at = 0;
        let mut next = |abi: CanonicalAbiInfo| abi.next_field32_size(&mut at);
        let id = next(u64::ABI);
        let job = next(u32::ABI);
        let priority = next(i32::ABI);
        let demand = next(Resources::ABI);
        let est_duration_ms = next(u64::ABI);
        let input_bytes = next(u64::ABI);
        let attempts = next(u32::ABI);
        let mut inner = 0;
        let mut next = |abi: CanonicalAbiInfo| demand + abi.next_field32_size(&mut inner);
        let (cpu_millis, memory_mib, gpus) = (next(u32::ABI), next(u64::ABI), next(u32::ABI));
        Self {
            size: Task::SIZE32,
            id,
            job,
            priority,
            cpu_millis,
            memory_mib,
            gpus,
            est_duration_ms,
            input_bytes,
            attempts,
        }
    }

    fn write(&self, out: &mut [u8], t: &Task) {
        fn put<const N: usize>(out: &mut [u8], at: usize, bytes: [u8; N]) {
            out[at..at + N].copy_from_slice(&bytes);
        }
        put(out, self.id, t.id.to_le_bytes());
        put(out, self.job, t.job.to_le_bytes());
        put(out, self.priority, t.priority.to_le_bytes());
        put(out, self.cpu_millis, t.demand.cpu_millis.to_le_bytes());
        put(out, self.memory_mib, t.demand.memory_mib.to_le_bytes());
        put(out, self.gpus, t.demand.gpus.to_le_bytes());
        put(out, self.est_duration_ms, t.est_duration_ms.to_le_bytes());
        put(out, self.input_bytes, t.input_bytes.to_le_bytes());
        put(out, self.attempts, t.attempts.to_le_bytes());
    }
}

/// Lowers `tasks` as the `list<task>` of type `ty`: one allocation in the guest, one borrow
/// of its memory, every task written at fixed offsets. Returns the list's (pointer, length).
fn lower_tasks<T>(
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    tasks: &[Task],
) -> wasmtime::Result<(usize, usize)> {
    if !matches!(ty, InterfaceType::List(_)) {
        bad_type_info()
    }
    let layout = TaskLayout::new();
    let bytes = tasks
        .len()
        .checked_mul(layout.size)
        .ok_or_else(|| wasmtime::format_err!("size overflow copying the task list"))?;
    let ptr = cx.realloc(0, 0, Task::ALIGN32, bytes)?;
    // Padding bytes are zeroed, as the guest may read the image as a whole.
    let image = &mut cx.as_slice_mut()[ptr..][..bytes];
    image.fill(0);
    for (out, task) in image.chunks_exact_mut(layout.size).zip(tasks) {
        layout.write(out, task);
    }
    Ok((ptr, tasks.len()))
}
