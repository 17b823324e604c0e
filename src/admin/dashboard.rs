//! `GET /`: the live dashboard. The page is rendered on the server from the status document
//! (it reads well without JavaScript) and a few lines of plain JavaScript fetch
//! `/v1/status` every 2 s and render the same markup again. No build step, no assets.

use super::status::Status;
use std::fmt::Write;

const STYLE: &str = r#"
:root { --ok:#2e9d5b; --bad:#d64545; --warn:#d99a1e; --muted:#6b7280; --bg:#f6f7f9; --card:#fff; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; background:var(--bg); color:#1f2937; }
header { background:#1f2937; color:#fff; padding:14px 24px; display:flex; gap:24px; align-items:baseline; }
header h1 { margin:0; font-size:20px; }
header .meta { color:#cbd5e1; font-size:13px; }
main { padding:20px 24px; display:grid; gap:20px; }
h2 { margin:0 0 10px; font-size:16px; color:#374151; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(220px,1fr)); gap:14px; }
.card { background:var(--card); border-radius:10px; padding:14px 16px; box-shadow:0 1px 3px rgba(0,0,0,.08); border-left:6px solid var(--muted); }
.card.ok { border-left-color:var(--ok); } .card.bad { border-left-color:var(--bad); } .card.warn { border-left-color:var(--warn); }
.card .name { font-weight:600; font-size:17px; }
.card .health { font-size:13px; color:var(--muted); }
.bar { height:8px; background:#e5e7eb; border-radius:4px; margin-top:8px; overflow:hidden; }
.bar span { display:block; height:100%; background:#3b82f6; }
table { width:100%; border-collapse:collapse; background:var(--card); border-radius:10px; overflow:hidden; box-shadow:0 1px 3px rgba(0,0,0,.08); }
th, td { text-align:left; padding:7px 12px; border-bottom:1px solid #eef0f3; font-size:14px; }
th { background:#f1f3f6; font-weight:600; color:#4b5563; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
.dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:6px; background:var(--muted); }
.dot.ok { background:var(--ok); } .dot.bad { background:var(--bad); } .dot.warn { background:var(--warn); }
.probe { color:var(--muted); font-size:12px; }
"#;

const SCRIPT: &str = r#"
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
function pct(n, total) { return total > 0 ? Math.round(100 * n / total) : 0; }
function state(ready, mode) { return mode === 'drain' ? 'warn' : (ready ? 'ok' : 'bad'); }
function regions(s) {
  const total = s.regions.reduce((a, r) => a + r.answers, 0);
  return s.regions.map(r => {
    const cls = r.endpoints === 0 ? '' : (r.ready === r.endpoints ? 'ok' : (r.ready > 0 ? 'warn' : 'bad'));
    const p = pct(r.answers, total);
    return `<div class="card ${cls}" data-region="${esc(r.name)}"><div class="name">${esc(r.name)}</div>` +
      `<div class="health">${r.ready}/${r.endpoints} endpoints ready</div>` +
      `<div class="health">${p}% of DNS answers (${r.answers})</div><div class="bar"><span style="width:${p}%"></span></div></div>`;
  }).join('');
}
function pools(s) {
  let rows = '';
  for (const p of s.pools) {
    const total = p.endpoints.reduce((a, e) => a + e.answers, 0);
    for (const e of p.endpoints) {
      rows += `<tr><td>${esc(p.name)}</td><td><span class="dot ${state(e.ready, e.mode)}"></span>${esc(e.address)}</td>` +
        `<td>${esc(e.region)}</td><td>${e.ready ? 'ready' : 'not ready'} (${esc(e.mode)})<div class="probe">${esc(e.last_probe || '')}</div></td>` +
        `<td class="num">${e.answers}</td><td class="num">${pct(e.answers, total)}%</td></tr>`;
    }
  }
  return rows;
}
function targets(s) {
  let rows = '';
  for (const g of s.target_groups) {
    const total = g.targets.reduce((a, t) => a + t.requests, 0);
    for (const t of g.targets) {
      rows += `<tr><td>${esc(g.name)}</td><td><span class="dot ${state(t.ready, t.mode)}"></span>${esc(t.address)}</td>` +
        `<td>${t.ready ? 'ready' : 'not ready'} (${esc(t.mode)})${t.ejected ? ' ejected' : ''}<div class="probe">${esc(t.last_probe || '')}</div></td>` +
        `<td class="num">${t.in_flight}</td><td class="num">${t.requests}</td><td class="num">${pct(t.requests, total)}%</td></tr>`;
    }
  }
  return rows;
}
function scaling(s) {
  return s.scaling_groups.map(g => {
    const a = g.activities[0];
    const last = a ? `${esc(a.start_time)} ${esc(a.status)}: ${esc(a.description)}<div class="probe">${esc(a.cause)}</div>` : '';
    return `<tr data-group="${esc(g.name)}"><td>${esc(g.name)}</td><td>${esc(g.region)}</td>` +
      `<td class="num">${g.min} / ${g.desired} / ${g.max}</td><td class="num">${g.in_service}</td>` +
      `<td class="num">${g.pending}</td><td class="num">${g.draining}</td><td>${last}</td></tr>`;
  }).join('');
}
// With admin.public_reads = false the page is opened as /#token=TOKEN: the fragment never
// leaves the browser, and the token goes with each poll as a bearer token.
const token = new URLSearchParams(location.hash.slice(1)).get('token');
async function refresh() {
  try {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const r = await fetch('/v1/status', { cache: 'no-store', headers });
    if (!r.ok) {
      document.getElementById('meta').textContent = (r.status === 401 || r.status === 403)
        ? 'reads need the admin token: open this page as /#token=TOKEN' : 'status ' + r.status;
      return;
    }
    const s = await r.json();
    document.getElementById('regions').innerHTML = regions(s);
    document.getElementById('pools').innerHTML = pools(s);
    document.getElementById('targets').innerHTML = targets(s);
    document.getElementById('scaling').innerHTML = scaling(s);
    document.getElementById('meta').textContent = meta(s);
    document.body.setAttribute('data-polled', new Date().toISOString());
  } catch (e) { document.getElementById('meta').textContent = 'disconnected: ' + e; }
}
function meta(s) {
  return `config ${s.config.hash} · ${s.dns.queries} DNS queries · ${s.dns.failed_open} fail-open · reloads ${s.config.reloads_ok} ok, ${s.config.reloads_failed} failed`;
}
setInterval(refresh, 2000);
if (token) refresh();
"#;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(n: u64, total: u64) -> u64 {
    (100 * n + total / 2).checked_div(total).unwrap_or(0)
}

fn state(ready: bool, mode: &str) -> &'static str {
    match (mode, ready) {
        ("drain", _) => "warn",
        (_, true) => "ok",
        _ => "bad",
    }
}

/// The page, with the current status rendered in. `locked` when the request may not read
/// the status (`admin.public_reads = false` and no token; `s` is then empty): the script
/// fills the page once it is opened as `/#token=TOKEN`.
pub fn page(s: &Status, locked: bool) -> String {
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>roundhouse</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{STYLE}</style></head><body>\
         <header><h1>roundhouse</h1><span class=\"meta\" id=\"meta\">"
    );
    if locked {
        out.push_str("reads need the admin token: open this page as /#token=TOKEN");
    } else {
        let _ = write!(
            out,
            "config {} · {} DNS queries · {} fail-open · reloads {} ok, {} failed",
            esc(&s.config.version.hash),
            s.dns.queries,
            s.dns.failed_open,
            s.config.reloads_ok,
            s.config.reloads_failed
        );
    }
    out.push_str("</span></header><main>");
    out.push_str("<section><h2>Regions</h2><div class=\"cards\" id=\"regions\">");
    let total: u64 = s.regions.iter().map(|r| r.answers).sum();
    for r in &s.regions {
        let cls = match (r.endpoints, r.ready) {
            (0, _) => "",
            (n, k) if n == k => "ok",
            (_, 0) => "bad",
            _ => "warn",
        };
        let p = pct(r.answers, total);
        let _ = write!(
            out,
            "<div class=\"card {cls}\" data-region=\"{name}\"><div class=\"name\">{name}</div>\
             <div class=\"health\">{}/{} endpoints ready</div>\
             <div class=\"health\">{p}% of DNS answers ({})</div><div class=\"bar\"><span style=\"width:{p}%\"></span></div></div>",
            r.ready,
            r.endpoints,
            r.answers,
            name = esc(&r.name)
        );
    }
    out.push_str("</div></section><section><h2>Pool endpoints</h2><table><thead><tr><th>pool</th><th>endpoint</th><th>region</th><th>health</th><th>answers</th><th>share</th></tr></thead><tbody id=\"pools\">");
    for p in &s.pools {
        let total: u64 = p.endpoints.iter().map(|e| e.answers).sum();
        for e in &p.endpoints {
            let _ = write!(
                out,
                "<tr><td>{}</td><td><span class=\"dot {}\"></span>{}</td><td>{}</td><td>{} ({})<div class=\"probe\">{}</div></td><td class=\"num\">{}</td><td class=\"num\">{}%</td></tr>",
                esc(&p.name),
                state(e.ready, e.mode),
                esc(&e.address),
                esc(&e.region),
                if e.ready { "ready" } else { "not ready" },
                e.mode,
                esc(e.last_probe.as_deref().unwrap_or("")),
                e.answers,
                pct(e.answers, total)
            );
        }
    }
    out.push_str("</tbody></table></section><section><h2>Balancer targets</h2><table><thead><tr><th>target group</th><th>target</th><th>health</th><th>in flight</th><th>requests</th><th>share</th></tr></thead><tbody id=\"targets\">");
    for g in &s.target_groups {
        let total: u64 = g.targets.iter().map(|t| t.requests).sum();
        for t in &g.targets {
            let _ = write!(
                out,
                "<tr><td>{}</td><td><span class=\"dot {}\"></span>{}</td><td>{} ({}){}<div class=\"probe\">{}</div></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}%</td></tr>",
                esc(&g.name),
                state(t.ready, t.mode),
                t.address,
                if t.ready { "ready" } else { "not ready" },
                t.mode,
                if t.ejected { " ejected" } else { "" },
                esc(t.last_probe.as_deref().unwrap_or("")),
                t.in_flight,
                t.requests,
                pct(t.requests, total)
            );
        }
    }
    out.push_str("</tbody></table></section><section><h2>Scaling groups</h2><table><thead><tr><th>group</th><th>region</th><th>min / desired / max</th><th>in service</th><th>pending</th><th>draining</th><th>latest activity</th></tr></thead><tbody id=\"scaling\">");
    for g in &s.scaling_groups {
        let last = g.activities.first().map_or(String::new(), |a| {
            format!(
                "{} {:?}: {}<div class=\"probe\">{}</div>",
                esc(&a.start_time),
                a.status,
                esc(&a.description),
                esc(&a.cause)
            )
        });
        let _ = write!(
            out,
            "<tr data-group=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{} / {} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{last}</td></tr>",
            esc(&g.name),
            esc(&g.name),
            esc(&g.region),
            g.min,
            g.desired,
            g.max,
            g.in_service,
            g.pending,
            g.draining
        );
    }
    let _ = writeln!(
        out,
        "</tbody></table></section></main><script>{SCRIPT}</script></body></html>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_shares() {
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
        assert_eq!(pct(1, 3), 33);
        assert_eq!(pct(2, 3), 67);
        assert_eq!(pct(5, 0), 0);
        assert_eq!(state(true, "drain"), "warn");
        assert_eq!(state(false, "auto"), "bad");
    }
}
