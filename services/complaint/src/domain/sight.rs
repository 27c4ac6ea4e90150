//! Who sees a complaint: one table, read by every read and write path (gRPC and Open311), and
//! the same table as SQL for lists.
//!
//! | reader                                   | a discipline report | an ordinary complaint          |
//! |------------------------------------------|---------------------|--------------------------------|
//! | the citizen who filed it                 | as filed            | as filed                       |
//! | another citizen                          | PERMISSION_DENIED   | PERMISSION_DENIED              |
//! | the staff member it names (any role)     | NOT_FOUND           | NOT_FOUND                      |
//! | discipline inspector (region and above)  | unmasked            | unmasked                       |
//! | efficiency office (supervisor), platform | counted, not shown  | masked                         |
//! | staff or system of the assigned unit     | NOT_FOUND           | masked                         |
//! | other staff (hall, clerks, reviewers)    | NOT_FOUND           | NOT_FOUND                      |
//! | the public (Open311), published regions  | never               | masked                         |
//!
//! A discipline report is one filed as 吃拿卡要 or another misconduct category, a retaliation
//! report (打击报复), or any complaint assigned to discipline inspection. Outside the reader's
//! region nothing exists (NOT_FOUND), whatever the row below says. "Names" means the staff
//! member targeted by id, or the person a conclusion held responsible.

use super::{ComplaintRow, TargetKind, View, DISCIPLINE};

/// The reader, derived once from the caller's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// A citizen acting for themself, by the fingerprint of their account.
    Citizen { filer: String },
    /// A discipline inspector (纪检监察).
    Inspector { subject: String },
    /// The efficiency office (效能办), or a platform system acting for the whole region (the
    /// 12345 hotline) — a `system` token without a department.
    Office { subject: String },
    /// Staff (clerk, reviewer, hall manager) or a department's system: the complaints
    /// assigned to their department, none without one.
    Unit {
        subject: String,
        department: Option<String>,
    },
    /// An anonymous reader of the public face (Open311).
    Public,
}

/// What a reader gets of one complaint in their region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    Read(View),
    /// Does not exist for this reader (NOT_FOUND).
    Hidden,
    /// Another citizen's (PERMISSION_DENIED).
    NotTheirs,
}

/// What of a complaint decides who sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub to_discipline: bool,
    pub assigned_to: &'a str,
    pub target_kind: TargetKind,
    pub target_id: &'a str,
    pub responsible_person: &'a str,
    pub filer_hash: &'a str,
}

impl<'a> From<&'a ComplaintRow> for Facts<'a> {
    fn from(c: &'a ComplaintRow) -> Self {
        Facts {
            to_discipline: c.to_discipline,
            assigned_to: &c.assigned_to,
            target_kind: c.target_kind,
            target_id: &c.target_id,
            responsible_person: &c.responsible_person,
            filer_hash: &c.filer_hash,
        }
    }
}

impl Facts<'_> {
    /// Filed as misconduct or retaliation, or handed to discipline inspection since.
    pub fn discipline_report(&self) -> bool {
        self.to_discipline || self.assigned_to == DISCIPLINE
    }

    /// Whether the complaint names this staff member.
    pub fn names(&self, subject: &str) -> bool {
        !subject.is_empty()
            && ((self.target_kind == TargetKind::Staff && self.target_id == subject)
                || self.responsible_person == subject)
    }
}

impl Reader {
    fn subject(&self) -> Option<&str> {
        match self {
            Reader::Inspector { subject }
            | Reader::Office { subject }
            | Reader::Unit { subject, .. } => Some(subject),
            Reader::Citizen { .. } | Reader::Public => None,
        }
    }

    /// The table above, for one complaint.
    pub fn sight(&self, c: &Facts<'_>) -> Sight {
        if let Reader::Citizen { filer } = self {
            return if !filer.is_empty() && c.filer_hash == filer {
                Sight::Read(View::Complainant)
            } else {
                Sight::NotTheirs
            };
        }
        if self.subject().is_some_and(|s| c.names(s)) {
            return Sight::Hidden;
        }
        if let Reader::Inspector { .. } = self {
            return Sight::Read(View::Inspector);
        }
        if c.discipline_report() {
            return Sight::Hidden;
        }
        match self {
            Reader::Office { .. } | Reader::Public => Sight::Read(View::Substance),
            Reader::Unit {
                department: Some(d),
                ..
            } if !d.is_empty() && c.assigned_to == d => Sight::Read(View::Substance),
            _ => Sight::Hidden,
        }
    }

    /// The same table as a list filter (the store turns it into SQL).
    pub fn filter(&self) -> ListFilter {
        let mut f = ListFilter {
            not_naming: self.subject().map(str::to_string),
            ..ListFilter::default()
        };
        match self {
            Reader::Citizen { filer } => {
                f.filer = Some(filer.clone());
                f.discipline = true;
                f.nothing = filer.is_empty();
            }
            Reader::Inspector { .. } => f.discipline = true,
            Reader::Office { .. } | Reader::Public => {}
            Reader::Unit { department, .. } => match department.as_deref() {
                Some(d) if !d.is_empty() => f.assigned_to = Some(d.to_string()),
                _ => f.nothing = true,
            },
        }
        f
    }

    /// Whether this reader may count the discipline reports of their region (the efficiency
    /// office sees how many there are, never what they say).
    pub fn counts_discipline(&self) -> bool {
        matches!(self, Reader::Office { .. })
    }
}

/// A list's conditions: every one set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only the complaints filed by this fingerprint.
    pub filer: Option<String>,
    /// Not the complaints naming this staff member.
    pub not_naming: Option<String>,
    /// Discipline reports included.
    pub discipline: bool,
    /// Only the complaints assigned to this unit.
    pub assigned_to: Option<String>,
    /// Nothing at all.
    pub nothing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "s2";

    fn facts(discipline: bool, assigned_to: &'static str, names_me: bool) -> Facts<'static> {
        Facts {
            to_discipline: discipline,
            assigned_to,
            target_kind: if names_me {
                TargetKind::Staff
            } else {
                TargetKind::Window
            },
            target_id: if names_me { ME } else { "ZH01" },
            responsible_person: "",
            filer_hash: "h-filer",
        }
    }

    fn unit(dept: Option<&str>) -> Reader {
        Reader::Unit {
            subject: ME.into(),
            department: dept.map(str::to_string),
        }
    }

    /// Every reader × (discipline report, ordinary complaint) × (names the reader or not),
    /// the expected sight written out by hand.
    #[test]
    fn the_table() {
        use Sight::*;
        let own = Reader::Citizen {
            filer: "h-filer".into(),
        };
        let other = Reader::Citizen {
            filer: "h-other".into(),
        };
        let inspector = Reader::Inspector { subject: ME.into() };
        let office = Reader::Office { subject: ME.into() };
        let dept = unit(Some("行政审批局"));
        let other_dept = unit(Some("市场监督管理局"));
        let no_dept = unit(None);
        let public = Reader::Public;
        // (reader, discipline report naming another, ordinary assigned to 行政审批局 naming
        // another, ordinary naming the reader, discipline naming the reader)
        let rows: Vec<(&str, &Reader, [Sight; 4])> = vec![
            ("own citizen", &own, [Read(View::Complainant); 4]),
            ("other citizen", &other, [NotTheirs; 4]),
            (
                "inspector",
                &inspector,
                [Read(View::Inspector), Read(View::Inspector), Hidden, Hidden],
            ),
            (
                "office",
                &office,
                [Hidden, Read(View::Substance), Hidden, Hidden],
            ),
            (
                "assigned unit",
                &dept,
                [Hidden, Read(View::Substance), Hidden, Hidden],
            ),
            ("other unit", &other_dept, [Hidden, Hidden, Hidden, Hidden]),
            ("no department", &no_dept, [Hidden, Hidden, Hidden, Hidden]),
            (
                "public",
                &public,
                [Hidden, Read(View::Substance), Read(View::Substance), Hidden],
            ),
        ];
        let cases = [
            facts(true, DISCIPLINE, false),
            facts(false, "行政审批局", false),
            facts(false, "行政审批局", true),
            facts(true, DISCIPLINE, true),
        ];
        for (who, reader, want) in rows {
            for (c, w) in cases.iter().zip(want) {
                assert_eq!(reader.sight(c), w, "{who} on {c:?}");
            }
        }
    }

    #[test]
    fn handed_to_discipline_later_is_a_discipline_report() {
        let c = facts(false, DISCIPLINE, false);
        assert!(c.discipline_report());
        assert_eq!(
            Reader::Office {
                subject: "x".into()
            }
            .sight(&c),
            Sight::Hidden
        );
    }

    #[test]
    fn the_person_held_responsible_no_longer_reads_it() {
        let mut c = facts(false, "行政审批局", false);
        c.responsible_person = ME;
        assert_eq!(unit(Some("行政审批局")).sight(&c), Sight::Hidden);
    }

    #[test]
    fn list_filters_follow_the_table() {
        assert!(unit(None).filter().nothing);
        let f = unit(Some("行政审批局")).filter();
        assert_eq!(
            (
                f.assigned_to.as_deref(),
                f.discipline,
                f.not_naming.as_deref()
            ),
            (Some("行政审批局"), false, Some(ME))
        );
        assert!(Reader::Inspector { subject: ME.into() }.filter().discipline);
        assert!(!Reader::Public.filter().discipline);
    }
}
