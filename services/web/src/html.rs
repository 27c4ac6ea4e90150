//! HTML by hand, escaped by default: [`e`] escapes every text put into a page; [`page`] wraps a
//! body into the one layout (Chinese, the stylesheet, an optional script, no inline script).

/// Escapes `s` for an HTML text or a double-quoted attribute.
pub fn e(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (escaped), `body` (already HTML), the page's script if any, and the
/// class of `<body>`.
pub fn page(title: &str, class: &str, body: &str, script: Option<&str>) -> String {
    let script = script
        .map(|s| format!("<script src=\"/static/{s}\" defer></script>"))
        .unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/static/style.css\">{script}</head>\
         <body class=\"{}\">{body}</body></html>\n",
        e(title),
        e(class)
    )
}

/// A page that refreshes itself every `secs` seconds (the pad's idle screen: no script).
pub fn refreshing(title: &str, class: &str, body: &str, secs: u32) -> String {
    page(title, class, body, None).replacen(
        "<meta charset=\"utf-8\">",
        &format!("<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{secs}\">"),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_escaped() {
        assert_eq!(
            e("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        let p = page("<b>", "x\"y", "<p>ok</p>", Some("screen.js"));
        assert!(p.contains("<title>&lt;b&gt;</title>") && p.contains("class=\"x&quot;y\""));
        assert!(p.contains("<script src=\"/static/screen.js\" defer></script>"));
        assert!(!p.contains("<script>"), "no inline script");
    }
}
