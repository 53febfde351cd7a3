//! The safety floor every change to the disk goes through: the fix
//! vocabulary (`fix`), the applier that carries fixes out under the rules
//! (`apply`: confinement, quarantine, backups), the one atomic writer
//! (`atomic`), the handle-based file operations that keep every change
//! beneath the root (`confined`), what a run changed and how to undo it (`journal`, `history`,
//! `rollback`), one heal at a time (`lock`), and the layout of the private
//! folder (`layout`). It knows no check and no orchestrator.

pub mod apply;
pub mod atomic;
pub mod confined;
pub mod fix;
pub mod history;
pub mod journal;
pub mod layout;
pub mod lock;
mod pathser;
mod remove;
pub mod retention;
pub mod rollback;

pub use apply::ApplyCtx;
pub use fix::{CustomOp, Fix, Op, Phase};
pub use history::Outcome;
pub use layout::STATE_DIR;
pub use remove::RemoveIfUnchanged;
