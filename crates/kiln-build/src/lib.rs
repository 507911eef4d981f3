//! kiln's builds: which images to build and in which order ([`schedule`]), what each
//! build needs ([`prepare`]), its input key ([`identity`]), the labels it carries
//! ([`labels`]), and the scheduler that runs them against the engine ([`run`]),
//! reporting [`event`]s as it goes. The marks builds leave on the engine (content tags,
//! label names, pins) are `kiln_marks`'.

pub mod bases;
pub mod changed;
pub mod event;
pub mod explain;
pub mod history;
pub mod identity;
pub mod labels;
pub mod pool;
pub mod prepare;
pub mod records;
pub mod run;
pub mod schedule;

pub use event::{Event, Origin, TimedEvent};
pub use pool::{Pool, PoolEngine};
pub use run::{Options, Outcome, Status, Summary, run};
pub use schedule::{CostUnit, Placed, Schedule, SimulatedEngine};
