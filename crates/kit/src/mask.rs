//! Masking of personal data for public reads: phone and ID numbers inside free text, the
//! surname before an honorific (王先生 → *先生), and account names. What is masked is replaced
//! by `*`, never dropped, so a reader sees that something was there.

/// Honorifics after which the preceding one or two characters are a name.
const HONORIFICS: &[&str] = &["先生", "女士", "同志", "师傅", "老师", "大爷", "阿姨"];

/// Masks every run of seven or more digits (phone, landline, ID and bank numbers; an ID's
/// trailing X counts as a digit): an 11-digit mobile keeps its first 3 and last 4
/// (138****5678), anything else its first 2 and last 2; and the name before an honorific.
pub fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || (matches!(chars[i], 'X' | 'x') && i - start >= 14))
            {
                i += 1;
            }
            let run = &chars[start..i];
            if run.len() >= 7 {
                let (keep_head, keep_tail) = if run.len() == 11 && run[0] == '1' {
                    (3, 4)
                } else {
                    (2, 2)
                };
                for (k, c) in run.iter().enumerate() {
                    let keep = k < keep_head || k >= run.len() - keep_tail;
                    out.push(if keep { *c } else { '*' });
                }
            } else {
                out.extend_from_slice(run);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    mask_names(&out)
}

/// Compound surnames: the two characters before an honorific are masked only for these.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "尉迟", "长孙", "宇文", "司徒",
    "夏侯", "公孙", "端木", "西门", "南宫",
];

/// 王先生 → *先生, 欧阳女士 → **女士 (the surname before the honorific: one character, two
/// for a compound surname).
fn mask_names(chars: &[char]) -> String {
    let mut out: Vec<char> = chars.to_vec();
    let s: String = chars.iter().collect();
    for h in HONORIFICS {
        for (byte_at, _) in s.match_indices(h) {
            let at = s[..byte_at].chars().count();
            if at == 0 || !is_cjk(chars[at - 1]) {
                continue;
            }
            let two: String = chars[at.saturating_sub(2)..at].iter().collect();
            let from = if at >= 2 && COMPOUND_SURNAMES.contains(&two.as_str()) {
                at - 2
            } else {
                at - 1
            };
            for c in out.iter_mut().take(at).skip(from) {
                *c = '*';
            }
        }
    }
    out.into_iter().collect()
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// An account or a name: its first and last character kept, the rest starred
/// (citizen-wang → c**********g, 王小明 → 王*明, 王明 → 王*).
pub fn name(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut out = String::new();
            out.push(chars[0]);
            out.extend(std::iter::repeat_n('*', n - 2));
            out.push(chars[n - 1]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phones_ids_and_names_are_masked() {
        assert_eq!(text("请回电13812345678"), "请回电138****5678");
        assert_eq!(text("身份证41070219900101123X"), "身份证41**************3X");
        assert_eq!(text("座机 3851234 转 12"), "座机 38***34 转 12");
        assert_eq!(text("王先生反映等候太久"), "*先生反映等候太久");
        assert_eq!(text("请欧阳女士放心"), "请**女士放心");
        assert_eq!(text("已向王先生致歉"), "已向*先生致歉");
        assert_eq!(text("等了 45 分钟, 5 号窗口"), "等了 45 分钟, 5 号窗口");
        assert_eq!(name("citizen-wang"), "c**********g");
        assert_eq!(name("王小明"), "王*明");
        assert_eq!(name("王明"), "王*");
        assert_eq!(name(""), "");
    }

    proptest! {
        /// Whatever the text, no seven digits in a row survive, and the length (in characters)
        /// is kept.
        #[test]
        fn no_long_number_survives(s in "[0-9a-z王先生 ,Xx]{0,60}") {
            let m = text(&s);
            prop_assert_eq!(m.chars().count(), s.chars().count());
            let mut run = 0;
            for c in m.chars() {
                run = if c.is_ascii_digit() { run + 1 } else { 0 };
                prop_assert!(run < 7, "{m}");
            }
        }
    }
}
