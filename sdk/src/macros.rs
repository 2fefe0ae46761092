//! Export macros: one line turns a trait impl into a component's exports.
//!
//! Each macro keeps one value of the plugin type in a thread-local (a component instance is
//! single-threaded), created with `Default` on first use.

/// Exports a [`Scheduler`](crate::Scheduler) implementation as the `scheduler` world.
#[macro_export]
macro_rules! export_scheduler {
    ($t:ty) => {
        const _: () = {
            $crate::__plugin_state!($t);
            struct Export;
            $crate::__plugin_guest!($t, Export, scheduler);
            impl $crate::scheduler::exports::infra::plugins::scheduling::Guest for Export {
                fn schedule(pending: $crate::Pending) -> ::std::vec::Vec<$crate::Assignment> {
                    with_state(|p| $crate::Scheduler::schedule(p, pending))
                }
            }
    $crate::scheduler::__export_scheduler_world!(Export with_types_in $crate::scheduler);
        };
    };
}

/// Exports a [`Cleaner`](crate::Cleaner) implementation as the `cleaner` world.
#[macro_export]
macro_rules! export_cleaner {
    ($t:ty) => {
        const _: () = {
            $crate::__plugin_state!($t);
            struct Export;
            $crate::__plugin_guest!($t, Export, cleaner);
            impl $crate::cleaner::exports::infra::plugins::cleaning::Guest for Export {
                fn wants_fit() -> bool {
                    with_state(|p| $crate::Cleaner::wants_fit(p))
                }
                fn fit(batch: $crate::Batch) -> ::std::result::Result<(), ::std::string::String> {
                    with_state(|p| $crate::Cleaner::fit(p, &batch))
                }
                fn apply(
                    batch: $crate::Batch,
                ) -> ::std::result::Result<($crate::Batch, $crate::Report), ::std::string::String>
                {
                    with_state(|p| $crate::Cleaner::apply(p, batch))
                }
            }
    $crate::cleaner::__export_cleaner_world!(Export with_types_in $crate::cleaner);
        };
    };
}

/// Exports an [`Aggregator`](crate::Aggregator) implementation as the `aggregator` world.
#[macro_export]
macro_rules! export_aggregator {
    ($t:ty) => {
        const _: () = {
            $crate::__plugin_state!($t);
            struct Export;
            $crate::__plugin_guest!($t, Export, aggregator);
            impl $crate::aggregator::exports::infra::plugins::aggregation::Guest for Export {
                fn begin_round(
                    info: $crate::RoundInfo,
                ) -> ::std::result::Result<bool, ::std::string::String> {
                    with_state(|p| $crate::Aggregator::begin_round(p, info))
                }
                fn plan_merge() -> ::std::result::Result<$crate::MergePlan, ::std::string::String> {
                    with_state(|p| $crate::Aggregator::plan_merge(p))
                }
                fn scan_chunk(
                    offset: u64,
                    updates: ::std::vec::Vec<::std::vec::Vec<f32>>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    with_state(|p| $crate::Aggregator::scan_chunk(p, offset, updates))
                }
                fn combine_chunk(
                    offset: u64,
                    global: ::std::vec::Vec<f32>,
                    updates: ::std::vec::Vec<::std::vec::Vec<f32>>,
                ) -> ::std::result::Result<::std::vec::Vec<f32>, ::std::string::String> {
                    with_state(|p| $crate::Aggregator::combine_chunk(p, offset, global, updates))
                }
                fn end_round() -> ::std::result::Result<::std::string::String, ::std::string::String>
                {
                    with_state(|p| $crate::Aggregator::end_round(p))
                }
            }
            $crate::aggregator::__export_aggregator_world!(Export with_types_in $crate::aggregator);
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_state {
    ($t:ty) => {
        ::std::thread_local! {
            static STATE: ::core::cell::RefCell<::core::option::Option<$t>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }
        fn with_state<R>(f: impl FnOnce(&mut $t) -> R) -> R {
            STATE.with(|s| {
                let mut s = s.borrow_mut();
                f(s.get_or_insert_with(<$t as ::core::default::Default>::default))
            })
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_guest {
    ($t:ty, $export:ident, $world:ident) => {
        impl $crate::$world::Guest for $export {
            fn info() -> $crate::PluginInfo {
                <$t as $crate::Plugin>::info()
            }
            fn configure(
                config: $crate::Config,
            ) -> ::std::result::Result<(), ::std::string::String> {
                with_state(|p| {
                    *p = <$t as ::core::default::Default>::default();
                    $crate::Plugin::configure(p, &config)
                })
            }
        }
    };
}
