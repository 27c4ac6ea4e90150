//! The bulletin (通报) of a region and period, rendered as Markdown and as HTML from one set of
//! sections: the ranking with its why, records by level, typical cases, exemptions (容错纠错),
//! commendations and the actions taken on the bottom. Staff appear by work id, units by name;
//! a complainant never appears (no fact carries one).

use super::scoring::Ranked;
use super::RecordRow;

/// An action recorded on a ranked unit or person (末位: 约谈, off-post training, adjustment;
/// the top: a commendation).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActionRow {
    pub key: String,
    pub action: String,
    pub note: String,
}

/// A published bulletin as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BulletinRow {
    pub id: uuid::Uuid,
    pub region_code: String,
    pub period: String,
    pub markdown: String,
    pub html: String,
    pub published_by: String,
    pub published_at: chrono::DateTime<chrono::Utc>,
}

pub const ACTIONS: &[(&str, &str)] = &[
    ("interview", "约谈"),
    ("training", "离岗培训"),
    ("adjustment", "调整岗位"),
    ("commendation", "通报表扬"),
];

/// Whether `action` may be taken on `key` given the period's ranking(s): a commendation on
/// the top, 约谈, off-post training or an adjustment on the bottom — anything else, or a key
/// not ranked, is FAILED_PRECONDITION `NOT_AT_THE_RANKING_EDGE`.
pub fn check_action(
    action: &str,
    key: &str,
    rankings: &[&[Ranked]],
) -> xiaoneng_kit::AppResult<()> {
    let row = rankings
        .iter()
        .flat_map(|r| r.iter())
        .find(|r| r.key == key);
    let ok = match row {
        Some(r) if action == "commendation" => r.top,
        Some(r) => r.bottom,
        None => false,
    };
    if ok {
        return Ok(());
    }
    let why = match row {
        None => format!("{key} is not ranked in the period"),
        Some(r) if r.rank.is_none() => format!("{key} has too few observations to be ranked"),
        Some(_) if action == "commendation" => format!("{key} is not at the top of the ranking"),
        Some(_) => format!("{key} is not at the bottom of the ranking (末位)"),
    };
    Err(xiaoneng_kit::AppError::precondition(
        "NOT_AT_THE_RANKING_EDGE",
        &format!("{why}: a commendation belongs to the top, 约谈, off-post training and an adjustment to the bottom"),
    ))
}

fn action_name(a: &str) -> &str {
    ACTIONS
        .iter()
        .find(|(k, _)| *k == a)
        .map(|(_, v)| *v)
        .unwrap_or(a)
}

fn level_name(l: &str) -> &'static str {
    match l {
        "reminder" => "提醒",
        "warning" => "预警",
        "yellow_card" => "黄牌",
        "red_card" => "红牌",
        "circulated" => "通报批评",
        "accountability" => "问责",
        _ => "其他",
    }
}

/// One table: a header and rows of cells.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

enum Block {
    Heading(String),
    Para(String),
    Table(Table),
}

fn blocks(
    region: &str,
    period: &str,
    ranking: &[Ranked],
    records: &[RecordRow],
    actions: &[ActionRow],
) -> Vec<Block> {
    let mut out = vec![Block::Heading(format!("{region} 效能督查通报 ({period})"))];
    out.push(Block::Heading("一、单位排名".into()));
    let pct = |x: Option<(f64, f64, f64)>| {
        x.map(|(p, lo, hi)| format!("{:.1}% [{:.1}%, {:.1}%]", p * 100.0, lo * 100.0, hi * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    out.push(Block::Table(Table {
        head: [
            "名次",
            "单位",
            "得分",
            "满意度 (95% 区间)",
            "评价数",
            "按时办结/应按时 (事项结构)",
            "扣分",
        ]
        .map(String::from)
        .to_vec(),
        rows: ranking
            .iter()
            .map(|r| {
                vec![
                    r.rank
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "不排名 (样本不足)".into()),
                    r.key.clone(),
                    format!("{:.1}", r.score),
                    pct(r.satisfaction),
                    r.observed.ratings.to_string(),
                    if r.observed.cases == 0 {
                        "—".into()
                    } else {
                        format!("{}/{:.1}", r.observed.on_time, r.observed.expected_on_time)
                    },
                    format!("{:.0}", r.penalty),
                ]
            })
            .collect(),
    }));
    out.push(Block::Heading("二、督查记录".into()));
    let mut by_level: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();
    for r in records {
        let e = by_level.entry(r.level.name()).or_default();
        e.0 += 1;
        e.1 += r.exemption_reason.is_some() as u32;
    }
    out.push(Block::Table(Table {
        head: ["等级", "条数", "其中容错免责"].map(String::from).to_vec(),
        rows: by_level
            .iter()
            .map(|(l, (n, x))| vec![level_name(l).to_string(), n.to_string(), x.to_string()])
            .collect(),
    }));
    out.push(Block::Heading("三、典型问题".into()));
    let typical: Vec<&RecordRow> = records
        .iter()
        .filter(|r| {
            matches!(r.level.name(), "red_card" | "circulated" | "accountability")
                && r.exemption_reason.is_none()
        })
        .collect();
    if typical.is_empty() {
        out.push(Block::Para("本期无。".into()));
    }
    for r in typical {
        let who = if r.person.is_empty() {
            String::new()
        } else {
            format!(" (工号 {})", r.person)
        };
        out.push(Block::Para(format!(
            "{}: {}{}, {} ({}).",
            r.on_date,
            r.unit,
            who,
            r.title,
            level_name(r.level.name())
        )));
    }
    out.push(Block::Heading("四、容错纠错".into()));
    let exempt: Vec<&RecordRow> = records
        .iter()
        .filter(|r| r.exemption_reason.is_some())
        .collect();
    if exempt.is_empty() {
        out.push(Block::Para("本期无。".into()));
    }
    for r in exempt {
        out.push(Block::Para(format!(
            "{} {}: {}; 免责理由: {}; 批准: {} ({}).",
            r.unit,
            r.title,
            level_name(r.level.name()),
            r.exemption_reason.clone().unwrap_or_default(),
            r.exemption_approver.clone().unwrap_or_default(),
            r.exemption_date.map(|d| d.to_string()).unwrap_or_default()
        )));
    }
    out.push(Block::Heading("五、表扬与末位处置".into()));
    for r in ranking.iter().filter(|r| r.top) {
        out.push(Block::Para(format!(
            "排名第一: {} (得分 {:.1})。",
            r.key, r.score
        )));
    }
    for r in ranking.iter().filter(|r| r.bottom) {
        out.push(Block::Para(format!(
            "末位: {} (得分 {:.1})。",
            r.key, r.score
        )));
    }
    for a in actions {
        let note = if a.note.is_empty() {
            String::new()
        } else {
            format!(": {}", a.note)
        };
        out.push(Block::Para(format!(
            "{} — {}{}",
            a.key,
            action_name(&a.action),
            note
        )));
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The bulletin as (Markdown, HTML).
pub fn render(
    region: &str,
    period: &str,
    ranking: &[Ranked],
    records: &[RecordRow],
    actions: &[ActionRow],
) -> (String, String) {
    let (mut md, mut html) = (
        String::new(),
        String::from("<article class=\"bulletin\">\n"),
    );
    for (i, b) in blocks(region, period, ranking, records, actions)
        .iter()
        .enumerate()
    {
        match b {
            Block::Heading(h) => {
                let level = if i == 0 { 1 } else { 2 };
                md.push_str(&format!("{} {h}\n\n", "#".repeat(level)));
                html.push_str(&format!("<h{level}>{}</h{level}>\n", html_escape(h)));
            }
            Block::Para(p) => {
                md.push_str(&format!("{p}\n\n"));
                html.push_str(&format!("<p>{}</p>\n", html_escape(p)));
            }
            Block::Table(t) => {
                md.push_str(&format!("| {} |\n", t.head.join(" | ")));
                md.push_str(&format!("|{}\n", "---|".repeat(t.head.len())));
                html.push_str("<table>\n<thead><tr>");
                for h in &t.head {
                    html.push_str(&format!("<th>{}</th>", html_escape(h)));
                }
                html.push_str("</tr></thead>\n<tbody>\n");
                for r in &t.rows {
                    md.push_str(&format!("| {} |\n", r.join(" | ").replace('\n', " ")));
                    html.push_str("<tr>");
                    for c in r {
                        html.push_str(&format!("<td>{}</td>", html_escape(c)));
                    }
                    html.push_str("</tr>\n");
                }
                md.push('\n');
                html.push_str("</tbody>\n</table>\n");
            }
        }
    }
    html.push_str("</article>\n");
    (md, html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scoring::Observed;

    fn ranked(key: &str, rank: Option<u32>, top: bool, bottom: bool) -> Ranked {
        Ranked {
            key: key.into(),
            observed: Observed::default(),
            satisfaction: None,
            on_time_index: None,
            penalty: 0.0,
            score: 50.0,
            rank,
            bottom,
            top,
        }
    }

    #[test]
    fn actions_belong_to_the_edges_of_the_ranking() {
        let units = [
            ranked("甲局", Some(1), true, false),
            ranked("乙局", Some(2), false, false),
            ranked("丙局", Some(3), false, true),
            ranked("丁局", None, false, false),
        ];
        let ok = |action: &str, key: &str| check_action(action, key, &[&units]).is_ok();
        assert!(ok("commendation", "甲局"));
        assert!(ok("interview", "丙局") && ok("training", "丙局") && ok("adjustment", "丙局"));
        assert!(!ok("interview", "甲局"), "the top is not interviewed");
        assert!(!ok("commendation", "丙局"), "the bottom is not commended");
        assert!(!ok("interview", "乙局"), "the middle neither");
        assert!(
            !ok("interview", "丁局"),
            "nor a unit too small to be ranked"
        );
        let e = check_action("interview", "戊局", &[&units]).unwrap_err();
        assert!(matches!(
            e,
            xiaoneng_kit::AppError::FailedPrecondition {
                reason: "NOT_AT_THE_RANKING_EDGE",
                ..
            }
        ));
    }

    /// Every text that reaches the HTML — a unit's name, a record's title, an action's note —
    /// is escaped; nothing of it becomes markup.
    #[test]
    fn the_bulletin_html_escapes_what_it_quotes() {
        let evil = "<script>alert(\"x\")</script>&";
        let units = [ranked(evil, Some(1), true, true)];
        let actions = [ActionRow {
            key: evil.into(),
            action: "interview".into(),
            note: "<b onmouseover=\"x\">约谈</b>".into(),
        }];
        let (md, html) = render("410702", "2026-11", &units, &[], &actions);
        assert!(
            !html.contains("<script>") && !html.contains("<b "),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;b onmouseover=&quot;x&quot;&gt;约谈&lt;/b&gt;"),
            "{html}"
        );
        assert!(md.contains(evil), "the Markdown quotes it as written");
    }
}
