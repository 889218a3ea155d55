//! The benchmark: placeholder replaced below.
pub async fn run(
    _host: &crate::Host,
    _mirror: &str,
    _runs: usize,
    _json: bool,
) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
