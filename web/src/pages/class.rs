//! Classes in the web app: starting or joining one, the class panel of the
//! dashboard (a teacher's join code, limits and assignments; a student's
//! assignments to start), and a teacher's page for one assignment: every
//! student's sprite, open it, reset it, collect everybody's.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use sprites_wire::api::Sprite;
use sprites_wire::classes::{Assignment, Collection, NewAssignment, Student};
use sprites_wire::client;
use sprites_wire::orgs::{Limits, NewOrganization, Organization};

use super::{ago, status_words, ErrorBanner, TopBar};
use crate::{api, Session};

/// Makes `slug` the organization the person acts in.
pub async fn switch_to(session: Session, slug: &str) -> api::Result<()> {
    let p = api::run(client::switch_organization(slug)).await?;
    session.signed_in(p);
    Ok(())
}

/// `/join/:code`, the link a teacher shares: joins the class once the
/// person is signed in (sign-in and sign-up come back here).
#[component]
pub fn JoinPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let params = use_params_map();
    let code = params.read_untracked().get("code").unwrap_or_default();
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let tried = StoredValue::new(false);
    let next = format!("/join/{}", api::enc(&code));
    Effect::new(move |_| {
        let Some(Some(_)) = session.0.get() else {
            return;
        };
        if tried.get_value() {
            return;
        }
        tried.set_value(true);
        let (code, navigate) = (code.clone(), navigate.clone());
        leptos::task::spawn_local(async move {
            let result = match api::run(client::join(&code)).await {
                Ok(org) => switch_to(session, &org.slug).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => navigate("/", Default::default()),
                Err(e) => error.set(Some(e.message)),
            }
        });
    });
    view! {
        <main class="narrow">
            <h1>"Join a class"</h1>
            {move || match session.0.get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(None) => view! {
                    <p>
                        "To join, "
                        <a href=format!("/?next={}", api::enc(&next))>"sign in"</a>
                        " or "
                        <a href=format!("/signup?next={}", api::enc(&next))>"create an account"</a>
                        "; you come back here after."
                    </p>
                }.into_any(),
                Some(Some(_)) => view! {
                    {move || match error.get() {
                        Some(e) => view! { <p class="error" role="alert">{e}</p> <p><a href="/">"Back to your sprites"</a></p> }.into_any(),
                        None => view! { <p class="loading">"Joining…"</p> }.into_any(),
                    }}
                }.into_any(),
            }}
        </main>
    }
}

/// What the class forms send: a code to join, or a class to start.
#[derive(Clone)]
enum ClassForm {
    Join(String),
    Teach(NewOrganization),
}

/// "Join a class" with a code, and "Start a class" for teachers.
#[component]
pub fn JoinOrTeach() -> impl IntoView {
    let session = expect_context::<Session>();
    let code = RwSignal::new(String::new());
    let class_name = RwSignal::new(String::new());
    let class_slug = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let act = Action::new_local(move |form: &ClassForm| {
        let form = form.clone();
        async move {
            let org = match &form {
                ClassForm::Join(c) => api::run(client::join(c)).await,
                ClassForm::Teach(req) => api::run(client::create_organization(req)).await,
            };
            let result = match org {
                Ok(org) => switch_to(session, &org.slug).await,
                Err(e) => Err(e),
            };
            match (result, form) {
                (Ok(()), ClassForm::Join(_)) => code.set(String::new()),
                (Ok(()), ClassForm::Teach(_)) => {
                    class_name.set(String::new());
                    class_slug.set(String::new());
                }
                (Err(e), _) => error.set(Some(e.message)),
            }
        }
    });
    let busy = act.pending();
    let send = move |ev: leptos::ev::SubmitEvent, form: ClassForm| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        error.set(None);
        act.dispatch_local(form);
    };
    let join = move |ev| send(ev, ClassForm::Join(code.get_untracked().trim().to_string()));
    let teach = move |ev| {
        let req = NewOrganization {
            slug: class_slug.get_untracked().trim().to_lowercase(),
            name: class_name.get_untracked().trim().to_string(),
            class: true,
        };
        send(ev, ClassForm::Teach(req))
    };
    view! {
        <details class="classes">
            <summary>"Classes: join one, or start one to teach"</summary>
            <div class="class-forms">
                <form class="inline" on:submit=join>
                    <label>
                        "Class code"
                        <input name="class-code" required placeholder="from your teacher" bind:value=code />
                    </label>
                    <button type="submit" disabled=move || busy.get()>"Join the class"</button>
                </form>
                <form class="inline" on:submit=teach>
                    <label>
                        "Class name"
                        <input name="class-name" required placeholder="Web design, spring" bind:value=class_name />
                    </label>
                    <label>
                        "Short name (in addresses)"
                        <input
                            name="class-slug"
                            required
                            pattern="[a-z0-9][a-z0-9\\-]*"
                            title="Lower-case letters, digits and hyphens"
                            placeholder="webdesign"
                            bind:value=class_slug
                        />
                    </label>
                    <button type="submit" disabled=move || busy.get()>"Start a class"</button>
                </form>
            </div>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </details>
    }
}

/// The dashboard's panel for a class: what a teacher manages, or what a
/// student starts.
#[component]
pub fn ClassPanel(
    org: Organization,
    sprites: RwSignal<Option<Vec<Sprite>>>,
    on_started: impl Fn(()) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let teacher = org.teaches();
    let slug = StoredValue::new(org.slug.clone());
    let assignments = RwSignal::new(None::<Vec<Assignment>>);
    let details = RwSignal::new(None::<Organization>);
    let error = RwSignal::new(None::<String>);
    let load = move || {
        leptos::task::spawn_local(async move {
            let s = slug.get_value();
            match api::run(client::assignments(&s)).await {
                Ok(a) => assignments.set(Some(a.assignments)),
                Err(e) => error.set(Some(e.message)),
            }
            if teacher {
                if let Ok(d) = api::run(client::organization(&s)).await {
                    details.set(Some(d));
                }
            }
        });
    };
    load();
    let navigate = use_navigate();
    let start = move |a: Assignment| {
        let navigate = navigate.clone();
        let on_started = on_started.clone();
        leptos::task::spawn_local(async move {
            match api::run(client::start_assignment(&slug.get_value(), &a.name)).await {
                Ok(started) => {
                    on_started(());
                    let sprite = started.sprite.map(|s| s.name).unwrap_or_default();
                    let mut to = format!("/s/{}", api::enc(&sprite));
                    if let Some(open) = &started.open {
                        to.push_str(&format!("?open={}", api::enc(open)));
                    }
                    navigate(&to, Default::default());
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <section class="class-panel" aria-labelledby="class-title">
            <h2 id="class-title">{format!("{} · {}", org.name, if teacher { "you teach" } else { "you study" })}</h2>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {teacher.then(|| view! { <TeacherTools slug=slug.get_value() details=details sprites=sprites on_published=move |_| load() /> })}
            <h3>"Assignments"</h3>
            {move || match assignments.get() {
                None => view! { <p class="loading">"Loading assignments…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="empty">{if teacher {
                        "No assignments yet: prepare a sprite, checkpoint it, and publish the checkpoint above."
                    } else {
                        "No assignments yet. They show here when your teacher publishes them."
                    }}</p>
                }.into_any(),
                Some(list) => view! {
                    <ul class="assignments">
                        {list.into_iter().map(|a| {
                            let a2 = a.clone();
                            let start = start.clone();
                            let mine = a.mine.clone();
                            view! {
                                <li class="assignment" data-assignment=a.name.clone()>
                                    <h4>{a.title.clone()}</h4>
                                    <p class="instructions">{a.instructions.clone()}</p>
                                    <div class="actions">
                                        {match mine {
                                            Some(s) => view! {
                                                <a class="button primary" href=format!("/s/{}", s.name)>{format!("Open {}", s.name)}</a>
                                                <span class="muted">{status_words(&s.status)}</span>
                                            }.into_any(),
                                            None => view! {
                                                <button class="primary" on:click=move |_| start(a2.clone())>"Start"</button>
                                            }.into_any(),
                                        }}
                                        {teacher.then(|| view! {
                                            <a href=format!("/class/{}/{}", slug.get_value(), a.name)>
                                                {format!("Students' sprites ({} started)", a.started.unwrap_or(0))}
                                            </a>
                                        })}
                                    </div>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}

/// The join code, the limits and the form that publishes an assignment.
#[component]
fn TeacherTools(
    slug: String,
    details: RwSignal<Option<Organization>>,
    sprites: RwSignal<Option<Vec<Sprite>>>,
    on_published: impl Fn(()) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let slug = StoredValue::new(slug);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    view! {
        <div class="teacher-tools">
            <JoinCode slug=slug details=details error=error />
            <LimitsForm slug=slug details=details notice=notice error=error />
            <PublishForm slug=slug sprites=sprites notice=notice error=error on_published=on_published />
            {move || notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </div>
    }
}

/// The class's join code and link, and a new code on demand.
#[component]
fn JoinCode(
    slug: StoredValue<String>,
    details: RwSignal<Option<Organization>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let new_code = move |_| {
        leptos::task::spawn_local(async move {
            match api::run(client::new_join_code(&slug.get_value())).await {
                Ok(c) => details.update(|d| {
                    if let Some(d) = d {
                        d.join_code = Some(c.join_code);
                    }
                }),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <p class="join-code">
            "Students join with the code "
            <strong data-join-code=move || details.get().and_then(|d| d.join_code).unwrap_or_default()>
                {move || details.get().and_then(|d| d.join_code).unwrap_or_else(|| "…".into())}
            </strong>
            " (under “Classes” on their dashboard) or the link "
            {move || details.get().and_then(|d| d.join_code).map(|c| {
                let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
                let link = format!("{origin}/join/{c}");
                view! { <a class="join-link" href=link.clone()>{link.clone()}</a> }
            })}
            ". "
            <button class="link" on:click=new_code>"New code"</button>
        </p>
    }
}

/// What each student may use: sprites and disk (empty for no limit).
#[component]
fn LimitsForm(
    slug: StoredValue<String>,
    details: RwSignal<Option<Organization>>,
    notice: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let max_sprites = RwSignal::new(String::new());
    let max_disk_gb = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(d) = details.get() {
            let limits = d.limits.unwrap_or_default();
            max_sprites.set(
                limits
                    .max_sprites_per_member
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            );
            max_disk_gb.set(
                limits
                    .max_disk_per_member
                    .map(|b| format!("{}", b as f64 / 1e9))
                    .unwrap_or_default(),
            );
        }
    });
    let save_limits = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let limits = Limits {
            // Unsigned as typed: a negative count is no limit, a negative
            // size none at all.
            max_sprites_per_member: max_sprites
                .get_untracked()
                .trim()
                .parse::<u64>()
                .ok()
                .map(|n| n as i64),
            max_disk_per_member: max_disk_gb
                .get_untracked()
                .trim()
                .parse::<f64>()
                .ok()
                .map(|gb| (gb * 1e9) as u64 as i64),
        };
        leptos::task::spawn_local(async move {
            match api::run(client::set_limits(&slug.get_value(), &limits)).await {
                Ok(d) => {
                    details.set(Some(d));
                    notice.set(Some("Limits saved.".into()));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <form class="inline limits" on:submit=save_limits>
            <label>"Sprites per student" <input name="max-sprites" inputmode="numeric" placeholder="no limit" bind:value=max_sprites /></label>
            <label>"Disk per student (GB)" <input name="max-disk" inputmode="decimal" placeholder="no limit" bind:value=max_disk_gb /></label>
            <button type="submit">"Save limits"</button>
        </form>
    }
}

/// Publishes a checkpoint of one of the teacher's sprites as an assignment.
#[component]
fn PublishForm(
    slug: StoredValue<String>,
    sprites: RwSignal<Option<Vec<Sprite>>>,
    notice: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    on_published: impl Fn(()) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let title = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let instructions = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let checkpoints = RwSignal::new(Vec::<api::Checkpoint>::new());
    let checkpoint = RwSignal::new(String::new());
    super::checkpoints::follow(from, checkpoints, checkpoint, error, true);
    let publish = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let req = NewAssignment {
            name: name.get_untracked().trim().to_lowercase(),
            title: title.get_untracked(),
            instructions: instructions.get_untracked(),
            sprite: from.get_untracked(),
            checkpoint: checkpoint.get_untracked(),
            open: None,
        };
        let on_published = on_published.clone();
        leptos::task::spawn_local(async move {
            match api::run(client::create_assignment(&slug.get_value(), &req)).await {
                Ok(_) => {
                    title.set(String::new());
                    name.set(String::new());
                    instructions.set(String::new());
                    notice.set(Some("Published: your students can start it now.".into()));
                    on_published(());
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <form class="publish" on:submit=publish>
            <h3>"Publish an assignment"</h3>
            <label>"Title" <input name="assignment-title" required placeholder="Lab 1: your first page" bind:value=title /></label>
            <label>
                "Short name (students' sprites are NAME-their-handle)"
                <input name="assignment-name" required maxlength="30" pattern="[a-z0-9][a-z0-9\\-]*" placeholder="lab1" bind:value=name />
            </label>
            <label>"Instructions" <textarea name="assignment-instructions" rows="3" bind:value=instructions></textarea></label>
            <label>
                "From the sprite"
                <select name="assignment-sprite" required on:change=move |ev| from.set(event_target_value(&ev))>
                    <option value="">"Choose the sprite you prepared"</option>
                    {move || sprites.get().unwrap_or_default().into_iter().map(|s| {
                        let n = s.name.clone();
                        view! { <option value=n.clone()>{n.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>
                "At the checkpoint"
                <select name="assignment-checkpoint" required on:change=move |ev| checkpoint.set(event_target_value(&ev))>
                    {move || checkpoints.get().into_iter().map(|c| {
                        let label = super::checkpoints::label(&c);
                        view! { <option value=c.id.clone()>{label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" class="primary">"Publish"</button>
        </form>
    }
}

/// `/class/:slug/:assignment`: a teacher's view of one assignment.
#[component]
pub fn AssignmentPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let params = use_params_map();
    let slug = StoredValue::new(params.read_untracked().get("slug").unwrap_or_default());
    let name = StoredValue::new(
        params
            .read_untracked()
            .get("assignment")
            .unwrap_or_default(),
    );
    let assignment = RwSignal::new(None::<Assignment>);
    let collections = RwSignal::new(Vec::<Collection>::new());
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let label = RwSignal::new(String::new());
    let load = move || {
        leptos::task::spawn_local(async move {
            let (s, n) = (slug.get_value(), name.get_value());
            match api::run(client::assignment(&s, &n)).await {
                Ok(a) => assignment.set(Some(a)),
                Err(e) => error.set(Some(e.message)),
            }
            if let Ok(c) = api::run(client::collections(&s, &n)).await {
                collections.set(c.collections);
            }
        });
    };
    // Students' workspaces open in the class: act in it.
    Effect::new(move |_| {
        let Some(p) = session.profile() else { return };
        if p.organization != slug.get_value() {
            leptos::task::spawn_local(async move {
                if let Err(e) = switch_to(session, &slug.get_value()).await {
                    error.set(Some(e.message));
                }
            });
        } else {
            load();
        }
    });
    let reset = move |student: String| {
        if !crate::pages::confirm(&format!(
                "Reset {student}'s sprite to the start of the assignment? Their work is kept as a checkpoint first."
            )) {
            return;
        }
        leptos::task::spawn_local(async move {
            let call = client::reset_student(&slug.get_value(), &name.get_value(), &student);
            match api::run(call).await {
                Ok(done) => {
                    notice.set(Some(format!(
                        "{} is back at the start; their work is checkpoint {} of {}.",
                        student, done.work_kept_as, done.sprite
                    )));
                    load();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let collect = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let l = label.get_untracked();
        leptos::task::spawn_local(async move {
            match api::run(client::collect(&slug.get_value(), &name.get_value(), &l)).await {
                Ok(c) => {
                    notice.set(Some(format!(
                        "Collected “{}” from {} students.",
                        c.label,
                        c.students.len()
                    )));
                    label.set(String::new());
                    load();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let title = Signal::derive(move || assignment.get().map(|a| a.title).unwrap_or_default());
    view! {
        <TopBar title=title />
        <ErrorBanner error=error />
        <main class="assignment-page">
            <p><a href="/">"← All sprites"</a></p>
            <h1>{move || assignment.get().map(|a| a.title).unwrap_or_else(|| "Assignment".into())}</h1>
            <p class="instructions">{move || assignment.get().map(|a| a.instructions).unwrap_or_default()}</p>
            {move || notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <table class="students">
                <thead><tr><th>"Student"</th><th>"Sprite"</th><th>"State"</th><th>"Last active"</th><th></th></tr></thead>
                <tbody>
                    {move || assignment.get().map(|a| a.students.unwrap_or_default().into_iter().map(|s| {
                        view! { <StudentRow student=s reset=reset /> }
                    }).collect_view())}
                </tbody>
            </table>
            <form class="inline collect" on:submit=collect>
                <label>"Label" <input name="collect-label" required placeholder="deadline: lab 1" bind:value=label /></label>
                <button type="submit" class="primary">"Collect everybody's work"</button>
            </form>
            <h2>"Collections"</h2>
            <Collections collections=collections />
        </main>
    }
}

/// A student's line on a teacher's assignment page: their sprite for it,
/// or that they did not start.
#[component]
fn StudentRow(student: Student, reset: impl Fn(String) + Clone + 'static) -> impl IntoView {
    let handle = student.handle.clone();
    match student.sprite {
        None => view! {
            <tr data-student=handle.clone()><td>{handle.clone()}</td><td colspan="4" class="muted">"Not started yet"</td></tr>
        }.into_any(),
        Some(sp) => {
            let h = handle.clone();
            view! {
                <tr data-student=handle.clone()>
                    <td>{handle.clone()}</td>
                    <td><a href=format!("/s/{}", sp.name)>{sp.name.clone()}</a></td>
                    <td>{status_words(&sp.status)}</td>
                    <td>{sp.last_active_at.as_deref().map(ago).unwrap_or_default()}</td>
                    <td class="actions">
                        <a class="button" href=format!("/s/{}", sp.name)>"Open workspace"</a>
                        <a href=sp.url.clone() target="_blank" rel="noopener">"Preview"</a>
                        <button on:click=move |_| reset(h.clone())>"Reset…"</button>
                    </td>
                </tr>
            }.into_any()
        }
    }
}

/// Every collection of an assignment, newest first: each student's
/// checkpoint, or why there is none.
#[component]
fn Collections(collections: RwSignal<Vec<Collection>>) -> impl IntoView {
    move || {
        let list = collections.get();
        if list.is_empty() {
            return view! { <p class="empty">"Nothing collected yet."</p> }.into_any();
        }
        view! {
            <ul class="collections">
                {list.into_iter().map(|c| view! {
                    <li>
                        <strong>{c.label.clone()}</strong>
                        <span class="muted">{format!(" · {}", ago(&c.created_at))}</span>
                        <ul>
                            {c.students.into_iter().map(|s| view! {
                                <li data-collected=s.handle.clone()>
                                    {format!("{}: {} ", s.handle, s.sprite)}
                                    {match (s.checkpoint, s.error) {
                                        (Some(cp), _) => view! { <span>{format!("checkpoint {cp}")}</span> }.into_any(),
                                        (None, Some(e)) => view! { <span class="error">{e}</span> }.into_any(),
                                        _ => view! { <span></span> }.into_any(),
                                    }}
                                </li>
                            }).collect_view()}
                        </ul>
                    </li>
                }).collect_view()}
            </ul>
        }.into_any()
    }
}
