//! The day's report: one HTML file, its pictures drawn here as inline SVG (no script, no CDN),
//! readable offline and printable.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::check::Check;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const COLOURS: [&str; 12] = [
    "#1f5fa8", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50", "#b7950b", "#e84393",
    "#0984e3", "#6d4c41",
];

/// Horizontal bars, one per row, the value written at the bar's end.
pub fn bars(title: &str, rows: &[(String, f64)], unit: &str) -> String {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let (lw, bw, rh) = (170.0, 420.0, 22.0);
    let h = 34.0 + rh * rows.len() as f64;
    let mut s = format!(
        r#"<figure><svg role="img" aria-label="{t}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><text x="0" y="16" class="t">{t}</text>"#,
        t = esc(title),
        w = lw + bw + 90.0,
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = 28.0 + rh * i as f64;
        let len = bw * v / max;
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" text-anchor="end">{l}</text><rect x="{lw}" y="{y}" width="{len:.1}" height="{bh}" fill="{c}"/><text x="{vx:.1}" y="{ty}">{v}{u}</text>"#,
            lx = lw - 6.0,
            ty = y + 14.0,
            l = esc(label),
            bh = rh - 6.0,
            c = COLOURS[0],
            vx = lw + len + 4.0,
            v = fmt_num(*v),
            u = esc(unit),
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Lines over a shared x axis (hours of the day, or seconds of the run).
pub fn lines(title: &str, series: &[(String, Vec<(f64, f64)>)], x_label: &str, y_label: &str) -> String {
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.1 };
    let (left, top, w, h) = (50.0, 28.0, 560.0, 200.0);
    let legend_h = 18.0 * series.len().div_ceil(4) as f64;
    let total_h = top + h + 40.0 + legend_h;
    let mut s = format!(
        r#"<figure><svg role="img" aria-label="{t}" viewBox="0 0 {tw} {total_h}" width="{tw}" height="{total_h}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><text x="0" y="16" class="t">{t}</text>"#,
        t = esc(title),
        tw = left + w + 20.0,
    );
    let px = |x: f64| left + (x - x0) / (x1 - x0) * w;
    let py = |y: f64| top + h - y / y1 * h;
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#555"/><line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="#555"/><text x="{left}" y="{lb}">{x0}</text><text x="{r}" y="{lb}" text-anchor="end">{x1} {xl}</text><text x="{ly}" y="{top}" text-anchor="end">{ym}</text><text x="{ly}" y="{b}" text-anchor="end">0</text><text x="{lx}" y="{tl}">{yl}</text>"##,
        b = top + h,
        r = left + w,
        lb = top + h + 16.0,
        x0 = fmt_num(x0),
        x1 = fmt_num(x1),
        xl = esc(x_label),
        ly = left - 4.0,
        ym = fmt_num(y1),
        lx = left + 4.0,
        tl = top + 10.0,
        yl = esc(y_label),
    );
    for (i, (name, p)) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let d: Vec<String> = p.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        let _ = write!(s, r#"<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{}"/>"#, d.join(" "));
        let (lx, ly) = (left + 140.0 * (i % 4) as f64, top + h + 34.0 + 18.0 * (i / 4) as f64);
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{ly}">{}</text>"#,
            ly - 9.0,
            lx + 14.0,
            esc(name)
        );
    }
    s.push_str("</svg></figure>");
    s
}

pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

pub struct Report {
    pub title: String,
    pub summary: Vec<(String, String)>,
    pub sections: Vec<(String, Vec<String>)>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn section(&mut self, title: &str, parts: Vec<String>) {
        self.sections.push((title.to_string(), parts));
    }

    pub fn html(&self) -> String {
        let mut s = format!(
            r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t}</title><style>
body{{font-family:"Noto Sans CJK SC","Noto Sans",sans-serif;margin:1.5rem auto;max-width:60rem;padding:0 1rem;color:#1b1b1b}}
h1{{font-size:1.5rem}} h2{{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}}
table{{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}} th,td{{border:1px solid #bbb;padding:.2rem .5rem;text-align:left}}
th{{background:#eef2f7}} figure{{margin:.8rem 0}} svg text{{font-size:12px;fill:#1b1b1b}} svg text.t{{font-size:14px;font-weight:bold}}
.ok{{color:#1e7b34;font-weight:bold}} .fail{{color:#b00020;font-weight:bold}} dl{{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}} dt{{font-weight:bold}}
</style></head><body><main><h1>{t}</h1><dl>"#,
            t = esc(&self.title)
        );
        for (k, v) in &self.summary {
            let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
        }
        s.push_str("</dl><h2>Invariants</h2><table><thead><tr><th scope=\"col\">invariant</th><th scope=\"col\">result</th><th scope=\"col\">detail</th></tr></thead><tbody>");
        for c in &self.checks {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                esc(&c.name),
                if c.ok { "ok" } else { "fail" },
                if c.ok { "holds" } else { "FAILS" },
                esc(&c.detail)
            );
        }
        s.push_str("</tbody></table>");
        for (title, parts) in &self.sections {
            let _ = write!(s, "<h2>{}</h2>", esc(title));
            for p in parts {
                s.push_str(p);
            }
        }
        s.push_str("</main></body></html>\n");
        s
    }
}

/// Count of each key, in key order.
pub fn counts<I: IntoIterator<Item = String>>(it: I) -> Vec<(String, f64)> {
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    for k in it {
        *m.entry(k).or_default() += 1.0;
    }
    m.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_escape_their_labels_and_scale_to_the_largest_value() {
        let svg = bars("等候 <时间>", &[("a&b".into(), 2.0), ("c".into(), 4.0)], " 分");
        assert!(svg.contains("等候 &lt;时间&gt;") && svg.contains("a&amp;b"));
        assert!(svg.contains(r#"width="420.0""#), "the largest bar spans the width: {svg}");
        assert!(svg.contains(r#"width="210.0""#));
        let l = lines("x", &[("s".into(), vec![(8.0, 0.0), (9.0, 5.0)])], "h", "min");
        assert!(l.contains("<polyline") && l.contains("50.0,228.0"), "{l}");
    }
}
