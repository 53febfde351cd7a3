//! The safety floor every change to the disk goes through: the fix
//! vocabulary (`fix`), the applier that carries fixes out under the rules
//! (`apply`: confinement, quarantine, backups; `replace`, `live`: only
//! what the check saw, never under a live writer), the one atomic writer
//! (`atomic`), the handle-based file operations that keep every change
//! beneath the root (`confined`), what a run changed and how to undo it
//! (`journal`, `ahead`, `history`, `rollback`), one heal at a time
//! (`lock`), the layout of the private folder (`layout`), and the sink long
//! work reports its progress to (`progress`). It knows no check and no
//! orchestrator.

mod ahead;
pub mod apply;
pub mod atomic;
pub mod confined;
mod copy;
pub mod fix;
pub mod history;
pub mod journal;
pub mod layout;
pub mod live;
pub mod lock;
mod pathser;
pub mod precondition;
pub mod progress;
mod remove;
mod replace;
pub mod retention;
pub mod rollback;
pub mod writers;

pub use apply::ApplyCtx;
pub use fix::{CustomOp, Fix, Op, Phase};
pub use history::Outcome;
pub use layout::STATE_DIR;
pub use progress::{Progress, Silent, Task};
pub use remove::RemoveIfUnchanged;
