//! The API client: JSON in and out, errors in the server's words.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, String)> {
        let method =
            Method::from_bytes(method.to_uppercase().as_bytes()).context("not an HTTP method")?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = res.status();
        Ok((status, res.text().await?))
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<String> {
        let (status, text) = self.raw(method, path, body).await?;
        if status.is_success() {
            return Ok(text);
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        match status {
            StatusCode::UNAUTHORIZED => anyhow::bail!("{message} (run `sprite login`)"),
            _ => anyhow::bail!("{message}"),
        }
    }

    fn json(text: &str) -> anyhow::Result<Value> {
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).context("the server answered something that is not JSON")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Self::json(&self.call("GET", path, None).await?)
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Self::json(&self.call("POST", path, Some(body)).await?)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Self::json(&self.call("DELETE", path, None).await?)
    }

    /// A POST answered with NDJSON progress lines.
    pub async fn ndjson(&self, path: &str, body: Value) -> anyhow::Result<Vec<Value>> {
        let text = self.call("POST", path, Some(body)).await?;
        text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }
}
