use super::*;
pub struct EnvCheck;
impl Check for EnvCheck {
    fn name(&self) -> &'static str {
        "env"
    }
    fn scope(&self) -> Scope {
        Scope::Files
    }
    fn run(&self, _ctx: &CheckCtx, _out: &mut Findings) -> anyhow::Result<()> {
        Ok(())
    }
}
