use super::*;
pub struct DirCheck;
impl Check for DirCheck {
    fn name(&self) -> &'static str {
        "dir"
    }
    fn scope(&self) -> Scope {
        Scope::Files
    }
    fn run(&self, _ctx: &CheckCtx, _out: &mut Findings) -> anyhow::Result<()> {
        Ok(())
    }
}
