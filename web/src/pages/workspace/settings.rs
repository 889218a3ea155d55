//! A sprite's settings: who may open its URL, when it sleeps, which sites
//! it may reach, who shares it, its services (start, stop, recent logs).

use leptos::prelude::*;
use sprites_wire::api::{SleepSettings, UpdateSprite, UrlSettings};
use sprites_wire::classes::SpriteMembers;
use sprites_wire::client;
use sprites_wire::policy::{NetworkPolicy, PolicyAction, PolicyRule};
use sprites_wire::services::ServiceLine;

use super::Ws;
use crate::api;

/// Seconds as the settings show them: "never" for 0.
fn minutes_text(secs: Option<u64>) -> String {
    match secs {
        Some(0) => "0".into(),
        Some(s) => format!("{}", (s as f64 / 60.0 * 100.0).round() / 100.0),
        None => String::new(),
    }
}

fn secs_of(minutes: &str) -> Option<u64> {
    let m: f64 = minutes.trim().parse().ok()?;
    (m >= 0.0).then(|| (m * 60.0).round() as u64)
}

#[component]
pub fn Settings() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let public = RwSignal::new(false);
    let warm = RwSignal::new(String::new());
    let cold = RwSignal::new(String::new());
    let saved = RwSignal::new(None::<&'static str>);
    Effect::new(move |_| {
        if let Some(s) = ws.sprite.get() {
            public.set(s.url_settings.auth.as_deref() == Some("public"));
            warm.set(minutes_text(s.sleep.warm_after_secs));
            cold.set(minutes_text(s.sleep.cold_after_secs));
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Some(w), Some(c)) = (
            secs_of(&warm.get_untracked()),
            secs_of(&cold.get_untracked()),
        ) else {
            ws.error.set(Some(
                "Sleep times are minutes: a number, 0 for never.".into(),
            ));
            return;
        };
        let auth = if public.get_untracked() {
            "public"
        } else {
            "sprite"
        };
        let req = UpdateSprite {
            url_settings: Some(UrlSettings {
                auth: Some(auth.into()),
                private_access: None,
            }),
            sleep: Some(SleepSettings {
                warm_after_secs: Some(w),
                cold_after_secs: Some(c),
            }),
            labels: None,
        };
        leptos::task::spawn_local(async move {
            match api::run(client::update_sprite(&ws.name.get_value(), &req)).await {
                Ok(s) => {
                    ws.sprite.set(Some(s));
                    saved.set(Some("Saved."));
                }
                Err(e) => ws.fail(e),
            }
        });
    };
    view! {
        <form class="settings" on:submit=save>
            <fieldset>
                <legend>"Who can open its URL"</legend>
                <label class="check">
                    <input
                        type="radio"
                        name="auth"
                        prop:checked=move || !public.get()
                        on:change=move |_| public.set(false)
                    />
                    "Private: signed-in members who may open it (in a class: its owner, the people it is shared with, teachers)"
                </label>
                <label class="check">
                    <input
                        type="radio"
                        name="auth"
                        prop:checked=move || public.get()
                        on:change=move |_| public.set(true)
                    />
                    "Public: anyone with the link"
                </label>
            </fieldset>
            <fieldset>
                <legend>"Sleep when idle"</legend>
                <label>
                    "Freeze in memory after (minutes, 0 = never)"
                    <input name="warm" inputmode="decimal" bind:value=warm />
                </label>
                <label>
                    "Stop its programs after (minutes, 0 = never)"
                    <input name="cold" inputmode="decimal" bind:value=cold />
                </label>
                <small>
                    "A sleeping sprite wakes by itself on the next visit, command or file change."
                </small>
            </fieldset>
            <button type="submit" class="primary">"Save settings"</button>
            {move || saved.get().map(|s| view! { <span class="muted" role="status">{s}</span> })}
        </form>
        <Network />
        <Members />
        <Services />
    }
}

/// How the network form reads a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// No rules.
    Anything,
    /// The listed names (and the defaults, if asked), nothing else.
    Only,
    /// Anything but the listed names.
    AllBut,
}

/// The form's view of `policy`: its kind, its names (one a line) and
/// whether it includes the defaults.
fn form_of(policy: &NetworkPolicy) -> (Reach, String, bool) {
    let defaults = policy
        .rules
        .iter()
        .any(|r| r.include.as_deref() == Some("defaults"));
    let named = |action: PolicyAction| -> Vec<String> {
        policy
            .rules
            .iter()
            .filter(|r| r.action == Some(action) && r.domain.as_deref() != Some("*"))
            .filter_map(|r| r.domain.clone())
            .collect()
    };
    let allowed = named(PolicyAction::Allow);
    if policy.rules.is_empty() {
        (Reach::Anything, String::new(), false)
    } else if defaults || !allowed.is_empty() || policy.rules.contains(&PolicyRule::deny("*")) {
        (Reach::Only, allowed.join("\n"), defaults)
    } else {
        (Reach::AllBut, named(PolicyAction::Deny).join("\n"), false)
    }
}

/// The policy the form says: names one a line (or separated by commas
/// or spaces).
fn policy_of(reach: Reach, names: &str, defaults: bool) -> NetworkPolicy {
    let names = names
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|n| !n.is_empty());
    let rules = match reach {
        Reach::Anything => vec![],
        Reach::Only => names
            .map(PolicyRule::allow)
            .chain(defaults.then(|| PolicyRule {
                include: Some("defaults".into()),
                ..Default::default()
            }))
            .chain([PolicyRule::deny("*")])
            .collect(),
        Reach::AllBut => names.map(PolicyRule::deny).collect(),
    };
    NetworkPolicy { rules }
}

/// Which sites the sprite may reach: its network policy, in force on the
/// running sprite as soon as it is saved.
#[component]
fn Network() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let reach = RwSignal::new(Reach::Anything);
    let names = RwSignal::new(String::new());
    let defaults = RwSignal::new(true);
    let saved = RwSignal::new(None::<&'static str>);
    let show = move |p: &NetworkPolicy| {
        let (r, n, d) = form_of(p);
        reach.set(r);
        names.set(n);
        defaults.set(d || r == Reach::Anything);
    };
    leptos::task::spawn_local(async move {
        match api::run(client::network_policy(&ws.name.get_value())).await {
            Ok(p) => show(&p),
            Err(e) => ws.fail(e),
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(None);
        let policy = policy_of(
            reach.get_untracked(),
            &names.get_untracked(),
            defaults.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            let sprite = ws.name.get_value();
            match api::done(client::set_network_policy(&sprite, &policy)).await {
                Ok(()) => {
                    show(&policy);
                    saved.set(Some("Saved: in force now."));
                }
                Err(e) => ws.fail(e),
            }
        });
    };
    let choice = move |r: Reach, text: &'static str| {
        view! {
            <label class="check">
                <input
                    type="radio"
                    name="reach"
                    prop:checked=move || reach.get() == r
                    on:change=move |_| reach.set(r)
                />
                {text}
            </label>
        }
    };
    view! {
        <form class="settings network" on:submit=save>
            <fieldset>
                <legend>"Sites it can reach"</legend>
                {choice(Reach::Anything, "Any site")}
                {choice(Reach::Only, "Only the sites listed")}
                {choice(Reach::AllBut, "Any site but those listed")}
                <label class:hidden=move || reach.get() == Reach::Anything>
                    "Sites, one a line (*.example.com: its subdomains)"
                    <textarea name="sites" rows="4" bind:value=names></textarea>
                </label>
                <label class="check" class:hidden=move || reach.get() != Reach::Only>
                    <input type="checkbox" name="defaults" bind:checked=defaults />
                    "Also the usual package registries and code hosts (PyPI, npm, crates.io, GitHub, Debian…)"
                </label>
                <small>
                    "Other names do not resolve inside the sprite, and their addresses cannot be reached; a change applies at once, without a restart."
                </small>
            </fieldset>
            <button type="submit" class="primary">"Save network"</button>
            {move || saved.get().map(|s| view! { <span class="muted" role="status">{s}</span> })}
        </form>
    }
}

/// Who shares the sprite: its owner and its members (a group's
/// workspace); its owner adds and removes them.
#[component]
fn Members() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let members = RwSignal::new(None::<SpriteMembers>);
    let handle = RwSignal::new(String::new());
    // Changes made since a list was asked for: a list asked before the
    // latest change may answer after it, and must not undo it on screen.
    let changes = StoredValue::new(0u64);
    let reload = move || {
        let asked_at = changes.get_value();
        leptos::task::spawn_local(async move {
            match api::run(client::sprite_members(&ws.name.get_value())).await {
                Ok(m) if changes.get_value() == asked_at => members.set(Some(m)),
                Ok(_) => {}
                Err(e) => ws.fail(e),
            }
        });
    };
    reload();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let h = handle.get_untracked().trim().to_string();
        changes.update_value(|c| *c += 1);
        leptos::task::spawn_local(async move {
            match api::run(client::add_sprite_member(&ws.name.get_value(), &h)).await {
                Ok(m) => {
                    members.set(Some(m));
                    handle.set(String::new());
                }
                Err(e) => ws.fail(e),
            }
        });
    };
    let remove = move |h: String| {
        changes.update_value(|c| *c += 1);
        leptos::task::spawn_local(async move {
            match api::run(client::remove_sprite_member(&ws.name.get_value(), &h)).await {
                Ok(()) => reload(),
                Err(e) => ws.fail(e),
            }
        });
    };
    view! {
        <section class="members">
            <h3>"Shared with"</h3>
            {move || members.get().map(|m| view! {
                <p class="muted">{match m.owner { Some(o) => format!("Made by {o}."), None => String::new() }}</p>
                <ul>
                    {m.members.into_iter().map(|mm| {
                        let h = mm.handle.clone();
                        view! {
                            <li data-member=mm.handle.clone()>
                                {mm.handle.clone()}
                                " "
                                <button class="link" on:click=move |_| remove(h.clone())>"Remove"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <form class="inline" on:submit=add>
                <label>
                    "Share with (user name)"
                    <input name="member-handle" required bind:value=handle />
                </label>
                <button type="submit">"Share"</button>
            </form>
            <small>"People it is shared with open this workspace, its files and terminals, as you do."</small>
        </section>
    }
}

#[component]
fn Services() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let services = RwSignal::new(None::<Vec<api::Service>>);
    let logs = RwSignal::new(None::<(String, Vec<String>)>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::run(client::services(&ws.name.get_value())).await {
                Ok(s) => services.set(Some(s)),
                Err(e) => ws.fail(e),
            }
        });
    };
    reload();
    let act = move |service: String, verb: &'static str| {
        leptos::task::spawn_local(async move {
            let sprite = ws.name.get_value();
            let call = match verb {
                "start" => client::start_service(&sprite, &service, false, "0s"),
                _ => client::stop_service(&sprite, &service, "10s"),
            };
            match api::done(call).await {
                Ok(_) => reload(),
                Err(e) => ws.fail(e),
            }
        });
    };
    let show_logs = move |service: String| {
        leptos::task::spawn_local(async move {
            let call = client::service_logs(&ws.name.get_value(), &service, 200, None);
            let text = match api::get_bytes(&call.path).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => return ws.fail(e),
            };
            let lines = text
                .lines()
                .filter_map(|l| serde_json::from_str::<ServiceLine>(l).ok())
                .map(|l| match l.kind.as_str() {
                    "stdout" | "stderr" => l.data.unwrap_or_default(),
                    other => format!("[{other}] {}", l.data.as_deref().unwrap_or("")),
                })
                .collect();
            logs.set(Some((service, lines)));
        });
    };
    view! {
        <section class="services">
            <h3>"Services"</h3>
            <p class="muted">
                "Programs the sprite keeps running, started again after a crash, a wake or a restore."
            </p>
            {move || match services.get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(list) if list.is_empty() => {
                    view! { <p class="muted">"No services. Create them with the sprite command or the API."</p> }
                        .into_any()
                }
                Some(list) => list
                    .into_iter()
                    .map(|s| {
                        let status = s.state.status.clone();
                        let (n1, n2, n3) = (s.name.clone(), s.name.clone(), s.name.clone());
                        view! {
                            <div class="service">
                                <strong>{s.name.clone()}</strong>
                                <span class=format!("state {status}")>{status.clone()}</span>
                                <code>{s.spec.cmd.clone()}</code>
                                {s.spec.http_port.map(|p| view! { <span class="badge">{format!("HTTP :{p}")}</span> })}
                                <button class="small" on:click=move |_| act(n1.clone(), "start")>"Start"</button>
                                <button class="small" on:click=move |_| act(n2.clone(), "stop")>"Stop"</button>
                                <button class="small" on:click=move |_| show_logs(n3.clone())>"Logs"</button>
                            </div>
                        }
                    })
                    .collect_view()
                    .into_any(),
            }}
            {move || {
                logs.get()
                    .map(|(name, lines)| {
                        view! {
                            <div class="logs">
                                <div class="diff-head">
                                    {format!("Recent output of {name}")}
                                    <button class="link" on:click=move |_| logs.set(None)>"Close"</button>
                                </div>
                                <pre>{lines.join("\n")}</pre>
                            </div>
                        }
                    })
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_form_reads_and_writes_policies() {
        let only = policy_of(Reach::Only, "github.com\n *.npmjs.org, pypi.org", true);
        assert_eq!(only.rules.len(), 5);
        assert_eq!(only.rules[4], PolicyRule::deny("*"));
        assert_eq!(
            form_of(&only),
            (
                Reach::Only,
                "github.com\n*.npmjs.org\npypi.org".into(),
                true
            )
        );
        let all_but = policy_of(Reach::AllBut, "ads.example", true);
        assert_eq!(all_but.rules, vec![PolicyRule::deny("ads.example")]);
        assert_eq!(
            form_of(&all_but),
            (Reach::AllBut, "ads.example".into(), false)
        );
        let any = policy_of(Reach::Anything, "ignored.example", true);
        assert!(any.rules.is_empty());
        assert_eq!(form_of(&any).0, Reach::Anything);
    }

    #[test]
    fn sleep_times_read_in_minutes() {
        assert_eq!(minutes_text(Some(60)), "1");
        assert_eq!(minutes_text(Some(1800)), "30");
        assert_eq!(minutes_text(Some(0)), "0");
        assert_eq!(secs_of("1.5"), Some(90));
        assert_eq!(secs_of("0"), Some(0));
        assert_eq!(secs_of("-1"), None);
        assert_eq!(secs_of("soon"), None);
    }
}
