//! Masking of personal data in every text shown to an accused unit or to the public: phone,
//! landline, ID and bank-card numbers in any common written form (separators, spaces, `+86`,
//! full-width digits), e-mail addresses, and personal names — found by a segmenter's
//! person-name tagging (jieba), after a cue (我叫, 联系人 …) and before an honorific (王先生).
//! What is masked is replaced by `*`, one for each character, never dropped, so a reader sees
//! that something was there and the text keeps its length.

use std::sync::LazyLock;

/// Honorifics after which the preceding one or two characters are a surname.
const HONORIFICS: &[&str] = &[
    "先生", "女士", "同志", "师傅", "老师", "大爷", "阿姨", "小姐", "大姐", "大哥",
];

/// Compound surnames: kept (or starred) as one.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "尉迟", "长孙", "宇文", "司徒",
    "夏侯", "公孙", "端木", "西门", "南宫",
];

/// Single-character surnames common enough that a tagged name starting with one is taken for
/// a person (the 百家姓's frequent part; rare ones such as 太 or 许 in 许可证 are left out of
/// the guess only when the word is a known non-name below).
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";

/// Words a segmenter may tag as a person but that are not names here.
const NOT_NAMES: &[&str] = &[
    "许可证",
    "许可",
    "申请人",
    "太久",
    "马上",
    "文明",
    "高效",
    "明天",
    "明确",
    "安全",
    "万元",
    "金额",
    "温馨",
    "和谐",
    "方便",
    "常规",
    "程序",
    "时间",
    "于是",
    "成本",
    "华丽",
    "宁可",
    "关于",
    "向前",
    "连续",
    "黄金",
    "白天",
    "周末",
    "周一",
    "周二",
    "周三",
    "周四",
    "周五",
    "周六",
    "周日",
    "江湖",
    "林业",
    "水利",
    "田地",
    "石油",
    "高速",
    "路上",
    "车辆",
    "康复",
    "武装",
    "史上",
    "严格",
    "全面",
    "应当",
    "和平",
    "卫生",
    "公安",
    "商务",
    "房产",
    "房屋",
    "司法",
    "简化",
    "简单",
    "管理",
    "宫殿",
];

/// Word endings that make a tagged word a role, a thing or a place, not a person.
const NOT_NAME_ENDINGS: &[char] = &[
    '人', '证', '局', '处', '科', '室', '区', '县', '市', '省', '镇', '乡', '村', '街', '路', '厅',
    '站', '所', '院', '校', '窗', '口', '号', '码', '费', '表', '书', '单', '照', '部', '委', '办',
    '队', '中', '心', '馆', '场', '厂', '司', '行', '店', '楼', '层', '台', '点', '次', '天', '年',
    '月', '日', '时',
];

/// Cues after which the next two or three characters are a name (我叫张三, 联系人李建国).
const CUES: &[&str] = &[
    "母亲",
    "父亲",
    "丈夫",
    "妻子",
    "爱人",
    "儿子",
    "女儿",
    "帮办员",
    "代办员",
    "我叫",
    "我是",
    "本人",
    "名叫",
    "叫做",
    "姓名",
    "联系人",
    "经办人",
    "办事员",
    "工作人员",
    "窗口人员",
    "申请人",
    "投诉人",
    "举报人",
    "被投诉人",
    "被举报人",
    "当事人",
    "代办人",
    "委托人",
    "负责人",
    "受理人",
    "审批人",
    "科长",
    "主任",
    "局长",
    "所长",
    "队长",
    "同事",
];

static JIEBA: LazyLock<jieba_rs::Jieba> = LazyLock::new(jieba_rs::Jieba::new);

/// Masks every number, e-mail and personal name in `s` (see the module's text). A mobile
/// number keeps its first 3 and last 4 digits (138****5678); an ID or bank-card number (15
/// digits or more) its first 6 and last 4; any other number of 7 digits or more its first 2
/// and last 2. A name keeps its surname (张**), a surname before an honorific is starred
/// (*先生). Dates (2026-11-02) are not numbers.
pub fn text(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    mask_numbers(&mut chars);
    mask_emails(&mut chars);
    mask_names(&mut chars);
    chars.into_iter().collect()
}

/// An ASCII or full-width digit's value.
fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// What may stand between the digits of one written number.
fn separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{3000}' | '\u{a0}' | '-' | '－' | '—' | '–' | '.' | '·' | '(' | ')' | '（' | '）'
    )
}

fn mask_numbers(chars: &mut [char]) {
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            i += 1;
            continue;
        }
        // One written number: digit runs joined by at most three separators; an ID's
        // trailing X after 17 digits.
        let start = i;
        let mut digits: Vec<usize> = Vec::new();
        let mut j = i;
        let mut end = i;
        while j < chars.len() {
            if digit(chars[j]).is_some() {
                digits.push(j);
                j += 1;
                end = j;
            } else if matches!(chars[j], 'X' | 'x' | 'Ｘ') && digits.len() == 17 {
                digits.push(j);
                j += 1;
                end = j;
                break;
            } else {
                let mut k = j;
                while k < chars.len() && separator(chars[k]) && k - j < 3 {
                    k += 1;
                }
                if k > j && k < chars.len() && digit(chars[k]).is_some() {
                    j = k;
                } else {
                    break;
                }
            }
        }
        // A country code before it: `+86`, `＋86`, `0086`.
        let plus = start > 0 && matches!(chars[start - 1], '+' | '＋');
        mask_number(chars, &digits, plus, &chars[start..end].to_vec());
        i = end.max(start + 1);
    }
}

/// Whether the written number is a date or a time of day (2026-11-02, 2026.11.2, 2026/11/02).
fn is_date(written: &[char]) -> bool {
    let parts: Vec<String> = written
        .split(|c| matches!(c, '-' | '－' | '.' | '/'))
        .map(|p| {
            p.iter()
                .filter_map(|c| digit(*c))
                .map(|d| char::from(b'0' + d as u8))
                .collect()
        })
        .collect();
    if parts.len() != 3 || written.iter().any(|c| c.is_whitespace()) {
        return false;
    }
    let n = |p: &str| p.parse::<u32>().unwrap_or(0);
    parts[0].len() == 4
        && (1900..=2100).contains(&n(&parts[0]))
        && (1..=2).contains(&parts[1].len())
        && (1..=12).contains(&n(&parts[1]))
        && (1..=2).contains(&parts[2].len())
        && (1..=31).contains(&n(&parts[2]))
}

fn mask_number(chars: &mut [char], digits: &[usize], plus: bool, written: &[char]) {
    if digits.len() < 7 || is_date(written) {
        return;
    }
    let value: Vec<u32> = digits
        .iter()
        .map(|&p| digit(chars[p]).unwrap_or(10))
        .collect();
    // A country code kept as written (it is every Chinese number's), the rest masked as the
    // national number it prefixes.
    let code = if value.starts_with(&[0, 0, 8, 6]) && value.len() > 13 {
        4
    } else if value.starts_with(&[8, 6]) && (plus || value.len() == 13) && value.len() > 11 {
        2
    } else {
        0
    };
    let national = &digits[code..];
    let n = national.len();
    let mobile = n == 11 && value[code] == 1 && (3..=9).contains(&value[code + 1]);
    let (head, tail) = if mobile {
        (3, 4)
    } else if n >= 15 {
        (6, 4)
    } else {
        (2, 2)
    };
    for (k, &p) in national.iter().enumerate() {
        if k >= head && k + tail < n {
            chars[p] = '*';
        }
    }
}

fn email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// zhang.san@example.com → z********@example.com (the local part after its first character;
/// digits already masked stay starred).
fn mask_emails(chars: &mut [char]) {
    for at in 0..chars.len() {
        if !matches!(chars[at], '@' | '＠') {
            continue;
        }
        let mut from = at;
        while from > 0 && (email_local(chars[from - 1]) || chars[from - 1] == '*') {
            from -= 1;
        }
        let mut to = at + 1;
        while to < chars.len() && email_domain(chars[to]) {
            to += 1;
        }
        let domain: String = chars[at + 1..to].iter().collect();
        if from == at || !domain.trim_end_matches('.').contains('.') {
            continue;
        }
        for c in chars.iter_mut().take(at).skip(from + 1) {
            *c = '*';
        }
    }
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// The surname a name starts with: two characters for a compound surname, else one from the
/// common list; None when it starts with neither.
fn surname_len(name: &[char]) -> Option<usize> {
    if name.len() >= 3 {
        let two: String = name[..2].iter().collect();
        if COMPOUND_SURNAMES.contains(&two.as_str()) {
            return Some(2);
        }
    }
    (!name.is_empty() && SURNAMES.contains(name[0])).then_some(1)
}

/// Whether `word` may be a person's name: two to four Chinese characters starting with a
/// surname, not a known non-name, not ending like a role, place or thing.
fn may_be_name(word: &[char]) -> bool {
    if !(2..=4).contains(&word.len()) || !word.iter().all(|c| is_cjk(*c)) {
        return false;
    }
    let s: String = word.iter().collect();
    let doubled = word.len() == 2 && word[0] == word[1];
    !doubled
        && surname_len(word).is_some_and(|n| n < word.len())
        && !NOT_NAMES.contains(&s.as_str())
        && !HONORIFICS.iter().chain(TITLES).any(|h| s.ends_with(h))
        && !word.last().is_some_and(|c| NOT_NAME_ENDINGS.contains(c))
}

/// Words that make what stands before them a place (金穗大道, 人民路).
const PLACE_WORDS: &[&str] = &[
    "大道", "路", "街", "大街", "巷", "胡同", "区", "县", "市", "镇", "乡", "村", "小区", "广场",
    "公园", "大厦", "中心", "大厅", "社区", "花园", "新村", "苑", "桥", "站", "山", "湖", "河",
    "局", "所",
];

fn before_place(chars: &[char], at: usize) -> bool {
    let next: String = chars[at.min(chars.len())..].iter().take(2).collect();
    PLACE_WORDS.iter().any(|w| next.starts_with(w))
}

/// Stars the given name of the name at `chars[from..to]`, keeping its surname.
fn star_given_name(chars: &mut [char], from: usize, to: usize) {
    let keep = surname_len(&chars[from..to]).unwrap_or(1);
    for c in chars.iter_mut().take(to).skip(from + keep) {
        *c = '*';
    }
}

fn person_tag(tag: &str) -> bool {
    matches!(tag, "nr" | "nrfg" | "nrt" | "nr1" | "nr2")
}

/// Where a clause starts: the text's start, after punctuation, or after a conjunction.
fn clause_start(chars: &[char], tags: &[jieba_rs::Tag<'_>], k: usize) -> bool {
    let at = tags[k].start;
    at == 0
        || matches!(
            chars[at - 1],
            '，' | '。'
                | '；'
                | '！'
                | '？'
                | '、'
                | ','
                | '.'
                | ';'
                | '!'
                | '?'
                | '：'
                | ':'
                | ' '
                | '（'
                | '('
                | '“'
                | '"'
                | '\n'
        )
        || (k > 0 && matches!(tags[k - 1].word, "和" | "与" | "及" | "跟" | "同" | "或"))
}

/// Words a subject's name is followed by (办事, 态度 …) besides verbs and adverbs.
const FOLLOW_WORDS: &[&str] = &[
    "态度", "办事", "工号", "服务", "那个", "这个", "一直", "同志", "本人",
];

/// Whether the word after a candidate name makes it a subject: a verb, adverb, preposition,
/// pronoun, particle 的, or one of [`FOLLOW_WORDS`].
fn follows_a_name(t: Option<&jieba_rs::Tag<'_>>) -> bool {
    t.is_some_and(|t| {
        t.tag.starts_with('v')
            || matches!(
                t.tag,
                "p" | "d" | "ad" | "r" | "zg" | "uj" | "c" | "l" | "u"
            )
            || FOLLOW_WORDS.iter().any(|w| t.word.starts_with(w))
    })
}

/// Names the segmenter's tokens spell at `k`: a 2–3 character run of whole tokens starting
/// with a surname (4 with a compound one), tagged a person or standing as a clause's subject
/// (followed by a verb, adverb …); the longest that holds.
fn name_at(chars: &[char], tags: &[jieba_rs::Tag<'_>], k: usize) -> Option<(usize, usize)> {
    let first = &tags[k];
    let from = first.start;
    let surname = surname_len(&chars[from..(from + 3).min(chars.len())])?;
    let two: String = chars[from..(from + 2).min(chars.len())].iter().collect();
    if NOT_NAMES.contains(&two.as_str()) && !person_tag(first.tag) {
        return None;
    }
    let max = if surname == 2 { 4 } else { 3 };
    let starts_clause = clause_start(chars, tags, k);
    let mut best = None;
    let mut end = k;
    while end < tags.len() && end < k + 3 {
        let to = tags[end].end;
        let len = to - from;
        if len > max {
            break;
        }
        let word = &chars[from..to];
        let single_surname = first.end - first.start == surname;
        let function_word = |t: &jieba_rs::Tag<'_>| {
            matches!(
                t.tag,
                "p" | "c" | "u" | "uj" | "ul" | "r" | "m" | "x" | "q" | "d" | "f"
            )
        };
        let tagged = (end == k && person_tag(first.tag) && len >= 2)
            || (end > k && person_tag(first.tag) && single_surname)
            || (end == k + 1
                && person_tag(tags[end].tag)
                && single_surname
                && (starts_clause || !function_word(first)));
        let subject = starts_clause && follows_a_name(tags.get(end + 1));
        // The last token of a longer run must be able to end a given name: not a function
        // word, not a two-character verb, not a character the sentence goes on with (让, 说).
        let last = &tags[end];
        let ends_well = end == k
            || !(function_word(last)
                || (last.tag.starts_with('v') && last.end - last.start >= 2)
                || (last.end - last.start == 1 && GOES_ON.contains(chars[last.start])));
        if len >= 2
            && ends_well
            && may_be_name(word)
            && !before_place(chars, to)
            && (tagged || subject)
        {
            // 唐俊说/nr: the segmenter glued the verb after a two-character name on.
            let glued = end == k && len == 3 && GLUED.contains(chars[to - 1]);
            best = Some((from, if glued { to - 1 } else { to }));
        }
        end += 1;
    }
    best
}

fn mask_names(chars: &mut [char]) {
    let text: String = chars.iter().collect();
    let tags = JIEBA.tag(&text, true);
    let mut names: Vec<(usize, usize)> = Vec::new();
    // 1. From the segmenter: person names it tags, and names standing as a clause's subject.
    let mut k = 0;
    while k < tags.len() {
        if let Some((from, mut to)) = name_at(chars, &tags, k) {
            // 罗丹/nr 丹: a doubled given name the segmenter cut.
            if to - from == 2 && to < chars.len() && chars[to] == chars[to - 1] {
                to += 1;
            }
            names.push((from, to));
            while k < tags.len() && tags[k].start < to {
                k += 1;
            }
            continue;
        }
        k += 1;
    }
    // 2. After a cue: the next two or three Chinese characters, when they start with a
    //    surname.
    for cue in CUES {
        for (byte_at, _) in text.match_indices(cue) {
            let mut at = text[..byte_at].chars().count() + cue.chars().count();
            while at < chars.len() && matches!(chars[at], ':' | '：' | ' ' | '是' | '为') {
                at += 1;
            }
            let run = chars[at..]
                .iter()
                .take(4)
                .take_while(|c| is_cjk(**c))
                .count();
            if run < 2 || surname_len(&chars[at..at + run]).is_none() {
                continue;
            }
            if names.iter().any(|(a, b)| *a <= at && at < *b) {
                continue;
            }
            let rest: String = chars[at + 1..].iter().take(2).collect();
            let rest2: String = chars[at + 2..].iter().take(2).collect();
            if HONORIFICS
                .iter()
                .chain(TITLES)
                .any(|h| rest.starts_with(h) || rest2.starts_with(h))
            {
                continue;
            }
            let len = name_length_after_cue(chars, &tags, at, run);
            let word = &chars[at..at + len];
            let s: String = word.iter().collect();
            if !NOT_NAMES.contains(&s.as_str())
                && !word.last().is_some_and(|c| NOT_NAME_ENDINGS.contains(c))
            {
                names.push((at, at + len));
            }
        }
    }
    for (from, to) in names {
        star_given_name(chars, from, to);
    }
    // 3. The surname alone before an honorific (王先生 → *先生, 欧阳女士 → **女士; a whole
    //    name there is masked as a name: 刘**同志), and before a title (冯科长 → *科长).
    for h in HONORIFICS.iter().chain(TITLES) {
        {
            for (byte_at, _) in text.match_indices(h) {
                let at = text[..byte_at].chars().count();
                if at == 0 {
                    continue;
                }
                let from = if chars[at - 1] == '*' {
                    // The name before it is masked already (刘**同志).
                    continue;
                } else if !is_cjk(chars[at - 1]) {
                    continue;
                } else if at >= 2
                    && COMPOUND_SURNAMES
                        .contains(&chars[at - 2..at].iter().collect::<String>().as_str())
                {
                    at - 2
                } else if SURNAMES.contains(chars[at - 1]) {
                    at - 1
                } else {
                    continue;
                };
                for c in chars.iter_mut().take(at).skip(from) {
                    *c = '*';
                }
            }
        }
    }
}

/// Titles after which a surname stands for a person (冯科长).
const TITLES: &[&str] = &[
    "科长", "局长", "主任", "处长", "所长", "队长", "经理", "书记", "股长",
];

/// Characters a sentence goes on with after a two-character name (…在, …说, …让).
const GOES_ON: &str = "在说让的和与及要不没一已是也都就很替把给对向从被去来等又还才了着过会能将跟同叫为并而但却则因所以于到由比按经有无请态办推迟骂暗答拒帮";

/// Characters a segmenter glues onto a two-character name that no given name ends with.
const GLUED: &str = "说让在把给对向从被去要不没很也都就替叫";

/// How many characters after a cue make the name: what the segmenter put in one word there
/// (two or three characters), else three, or two when the third is a character the sentence
/// goes on with.
fn name_length_after_cue(
    chars: &[char],
    tags: &[jieba_rs::Tag<'_>],
    at: usize,
    run: usize,
) -> usize {
    if let Some(t) = tags.iter().find(|t| t.start == at) {
        let n = t.end - t.start;
        if (2..=3).contains(&n) && n <= run {
            return n;
        }
    }
    if run >= 3 && !GOES_ON.contains(chars[at + 2]) {
        3
    } else {
        2
    }
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
mod tests;
