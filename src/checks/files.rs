use super::*;
pub struct FileCheck;
impl Check for FileCheck {
    fn name(&self) -> &'static str {
        "file"
    }
    fn scope(&self) -> Scope {
        Scope::Files
    }
    fn run(&self, _ctx: &CheckCtx, _out: &mut Findings) -> anyhow::Result<()> {
        Ok(())
    }
}
