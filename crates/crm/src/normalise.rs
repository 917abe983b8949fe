//! What people type, normalised so that two spellings of the same thing
//! compare equal: email addresses, phone numbers (E.164), company domains,
//! company names and tags. Duplicate detection, lead conversion and the
//! drafts all go through these, so a rule changes in one place.

/// Mail providers anyone can sign up with: their domain says nothing about
/// the company a person works for.
pub const FREE_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "outlook.de",
    "hotmail.com",
    "hotmail.de",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.de",
    "yahoo.co.uk",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "gmx.at",
    "gmx.ch",
    "gmx.com",
    "web.de",
    "t-online.de",
    "freenet.de",
    "mail.com",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
];

/// Legal forms that may end a company name; "Acme GmbH" and "ACME Inc." are
/// both "acme" to the duplicate finder.
const LEGAL_FORMS: &[&str] = &[
    "ab",
    "ag",
    "as",
    "bv",
    "co",
    "company",
    "corp",
    "corporation",
    "ev",
    "gmbh",
    "haftungsbeschränkt",
    "inc",
    "incorporated",
    "kg",
    "kgaa",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "mbh",
    "nv",
    "ohg",
    "oy",
    "plc",
    "pty",
    "sa",
    "sarl",
    "sas",
    "se",
    "spa",
    "srl",
    "ug",
];

/// Shortest and longest E.164 number, in digits after the `+`.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// An email address trimmed and lower-cased, or `None` when it is not one.
/// Plus-tags stay (`sam+crm@acme.example` is its own mailbox to us).
#[must_use]
pub fn normalise_email(text: &str) -> Option<String> {
    let email = text.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let well_formed = (3..=254).contains(&email.len())
        && (1..=64).contains(&local.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && is_host(domain);
    well_formed.then_some(email)
}

/// A phone number in E.164 form (`+49301234567`), or `None` when it is not
/// one. Spaces (non-breaking and thin ones too), dots, dashes (en and em
/// dashes too), slashes and parentheses go, as does a `(0)` after the
/// country code; `00` (and, for calling code 1, `011`) is read as `+`. A
/// national number (`030 1234567`) needs `calling_code`, the country calling
/// code of the tenant (`"49"`): its trunk `0` is dropped (kept for Italy, San
/// Marino and the Vatican, whose numbers keep it) and the code put in front.
#[must_use]
pub fn normalise_phone(text: &str, calling_code: Option<&str>) -> Option<String> {
    let text = text.trim();
    let (international, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // Separators as pasted from web pages and spreadsheets count as spaces and dashes.
    let separator = |c: char| {
        matches!(
            c,
            ' ' | '.' | '-' | '/' | '(' | ')' | '\u{a0}' | '\u{2009}' | '\u{202f}' | '\u{2010}'..='\u{2015}'
        )
    };
    if !rest.chars().all(|c| c.is_ascii_digit() || separator(c)) {
        return None;
    }
    // `+49 (0)30 …`: the trunk zero people write in brackets right after the code.
    let rest = match rest.split_once("(0)") {
        Some((code, number)) if international && code.chars().any(|c| c.is_ascii_digit()) => {
            format!("{code}{number}")
        }
        _ => rest.to_owned(),
    };
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let full = if international {
        digits
    } else if let Some(after_prefix) = digits.strip_prefix("00") {
        after_prefix.to_owned()
    } else if let Some(after_prefix) = digits.strip_prefix("011").filter(|_| calling_code == Some("1")) {
        // North America dials abroad with 011.
        after_prefix.to_owned()
    } else {
        let code = calling_code.filter(|code| is_calling_code(code))?;
        // Italy, San Marino and the Vatican keep the leading 0 in international form.
        let keeps_zero = matches!(code, "39" | "378" | "379");
        let national = if keeps_zero { &digits } else { digits.strip_prefix('0').unwrap_or(&digits) };
        format!("{code}{national}")
    };
    let valid = PHONE_DIGITS.contains(&full.len()) && !full.starts_with('0');
    valid.then(|| format!("+{full}"))
}

/// The company domain a URL, an email address or a bare domain points to
/// (`https://www.Acme.example/about` and `sam@acme.example` are both
/// `acme.example`), or `None`: not a domain, or a free-mail provider's.
#[must_use]
pub fn company_domain(text: &str) -> Option<String> {
    host_of(text).filter(|host| !is_free_mail(host))
}

/// The host a URL, an email address or a bare domain names, lower-cased,
/// without `www.`, a port or a path; free-mail providers included.
#[must_use]
pub fn host_of(text: &str) -> Option<String> {
    let text = text.trim().to_lowercase();
    let host = if text.contains("://") || !text.contains('@') {
        let after_scheme = text.split_once("://").map_or(text.as_str(), |(_, rest)| rest);
        let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
        // `user@host`: credentials in a URL are not part of the host.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        host_port.split_once(':').map_or(host_port, |(host, _)| host).to_owned()
    } else {
        let email = normalise_email(&text)?;
        email.rsplit_once('@').map(|(_, domain)| domain.to_owned())?
    };
    let host = host.strip_suffix('.').unwrap_or(&host);
    let host = host.strip_prefix("www.").unwrap_or(host);
    is_host(host).then(|| host.to_owned())
}

/// Whether `domain` (normalised) belongs to a free-mail provider.
#[must_use]
pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL_DOMAINS.contains(&domain)
}

/// A company name reduced to what tells companies apart: lower case, no
/// punctuation, single spaces, no "and", no legal form at its end ("ACME
/// GmbH & Co. KG" is `acme`). `None` when nothing is left.
#[must_use]
pub fn normalise_company_name(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    // Dots and apostrophes join ("A.C.M.E.", "O'Neil"); other punctuation separates.
    let spaced: String = lower
        .chars()
        .filter(|c| !matches!(c, '.' | '\'' | '’'))
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let mut words: Vec<&str> = spaced.split_whitespace().filter(|word| *word != "and").collect();
    // A company called just "AG" keeps its name.
    while words.len() > 1 && words.last().is_some_and(|word| LEGAL_FORMS.contains(word)) {
        words.pop();
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// Tags trimmed, with later spellings of an earlier tag (any case) dropped.
#[must_use]
pub fn normalise_tags(tags: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags.iter().map(|tag| tag.trim()).filter(|tag| !tag.is_empty()) {
        if !kept.iter().any(|k| k.to_lowercase() == tag.to_lowercase()) {
            kept.push(tag.to_owned());
        }
    }
    kept
}

/// The country calling code of an ISO 3166-1 alpha-2 country (`DE` → `49`),
/// for reading national phone numbers; `None` for a country not listed.
#[must_use]
pub fn calling_code_of(country: &str) -> Option<&'static str> {
    const CODES: [(&str, &str); 44] = [
        ("AT", "43"),
        ("AU", "61"),
        ("BE", "32"),
        ("BG", "359"),
        ("BR", "55"),
        ("CA", "1"),
        ("CH", "41"),
        ("CN", "86"),
        ("CY", "357"),
        ("CZ", "420"),
        ("DE", "49"),
        ("DK", "45"),
        ("EE", "372"),
        ("ES", "34"),
        ("FI", "358"),
        ("FR", "33"),
        ("GB", "44"),
        ("GR", "30"),
        ("HR", "385"),
        ("HU", "36"),
        ("IE", "353"),
        ("IN", "91"),
        ("IS", "354"),
        ("IT", "39"),
        ("JP", "81"),
        ("LI", "423"),
        ("LT", "370"),
        ("LU", "352"),
        ("LV", "371"),
        ("MT", "356"),
        ("MX", "52"),
        ("NL", "31"),
        ("NO", "47"),
        ("NZ", "64"),
        ("PL", "48"),
        ("PT", "351"),
        ("RO", "40"),
        ("SE", "46"),
        ("SG", "65"),
        ("SI", "386"),
        ("SK", "421"),
        ("TR", "90"),
        ("US", "1"),
        ("ZA", "27"),
    ];
    let country = country.trim().to_ascii_uppercase();
    CODES.iter().find(|(code, _)| *code == country).map(|(_, calling)| *calling)
}

/// A host name of at least two labels of `a-z 0-9 -`, not an IP address.
fn is_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels.last().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// One to three digits, not starting with zero (`1`, `49`, `353`).
fn is_calling_code(code: &str) -> bool {
    (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) && !code.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased_and_keep_their_plus_tag() {
        assert_eq!(normalise_email("  Sam.Taylor@ACME.example "), Some("sam.taylor@acme.example".into()));
        assert_eq!(normalise_email("sam+crm@acme.example"), Some("sam+crm@acme.example".into()));
        assert_ne!(normalise_email("sam+crm@acme.example"), normalise_email("sam@acme.example"));
    }

    #[test]
    fn malformed_emails_are_refused() {
        let long_local = format!("{}@acme.example", "a".repeat(65));
        for bad in [
            "",
            "sam",
            "@acme.example",
            "sam@",
            "sam@acme",
            "sam@@acme.example",
            "sam@acme..example",
            "sam@.acme.example",
            "sam taylor@acme.example",
            "sam\u{0}@acme.example",
            ".sam@acme.example",
            "sam@127.0.0.1",
            long_local.as_str(),
        ] {
            assert_eq!(normalise_email(bad), None, "{bad:?}");
        }
        // Whitespace around the address, a line break included, is trimmed rather than refused.
        assert_eq!(normalise_email("sam@acme.example\n"), Some("sam@acme.example".into()));
    }

    #[test]
    fn the_three_spellings_of_a_berlin_number_are_one_e164_number() {
        let expected = Some("+49301234567".to_owned());
        assert_eq!(normalise_phone("+49 30 1234567", None), expected);
        assert_eq!(normalise_phone("0049 (30) 123-4567", None), expected);
        assert_eq!(normalise_phone("030 1234567", Some("49")), expected);
        assert_eq!(normalise_phone("+49 (0)30 123.45.67", None), expected);
        assert_eq!(normalise_phone("030/1234567", Some("49")), expected);
    }

    #[test]
    fn a_national_number_needs_a_calling_code() {
        assert_eq!(normalise_phone("030 1234567", None), None);
        assert_eq!(normalise_phone("030 1234567", Some("049")), None, "not a calling code");
        assert_eq!(normalise_phone("030 1234567", Some("4x")), None, "not a calling code");
        // Without a trunk zero (North America), the code goes in front as it is.
        assert_eq!(normalise_phone("(415) 555-0100", Some("1")), Some("+14155550100".into()));
    }

    #[test]
    fn phones_outside_e164_lengths_or_with_letters_are_refused() {
        assert_eq!(normalise_phone("+49 30 12", None), None, "7 digits");
        assert_eq!(normalise_phone("+1234567", None), None, "7 digits");
        assert_eq!(normalise_phone("+12345678", None), Some("+12345678".into()), "8 digits");
        assert_eq!(normalise_phone("+123456789012345", None), Some("+123456789012345".into()), "15 digits");
        assert_eq!(normalise_phone("+1234567890123456", None), None, "16 digits");
        assert_eq!(normalise_phone("+49 30 1234567 ext 12", None), None);
        assert_eq!(normalise_phone("0800-FLOWERS", Some("1")), None);
        assert_eq!(normalise_phone("49+301234567", None), None, "a plus in the middle");
        assert_eq!(normalise_phone("+0301234567", None), None, "no country code starts with 0");
        assert_eq!(normalise_phone("", Some("49")), None);
    }

    #[test]
    fn company_domains_come_from_urls_emails_and_bare_domains() {
        let acme = Some("acme.example".to_owned());
        assert_eq!(company_domain("https://www.Acme.example/about"), acme);
        assert_eq!(company_domain("sam@acme.example"), acme);
        assert_eq!(company_domain("ACME.example"), acme);
        assert_eq!(company_domain("www.acme.example"), acme);
        assert_eq!(company_domain("http://acme.example:8080?ref=x"), acme);
        assert_eq!(company_domain("https://user@www.acme.example/"), acme);
        assert_eq!(company_domain("acme.example."), acme);
        assert_eq!(company_domain("https://shop.acme.example"), Some("shop.acme.example".into()));
    }

    #[test]
    fn free_mail_providers_give_no_company_domain() {
        for free in ["sam@gmail.com", "Sam@GMX.de", "sam@web.de", "https://outlook.com", "sam@yahoo.com"] {
            assert_eq!(company_domain(free), None, "{free}");
        }
        assert_eq!(host_of("sam@gmail.com"), Some("gmail.com".into()), "still a host");
    }

    #[test]
    fn things_that_are_not_domains_give_none() {
        for bad in
            ["", "acme", "https://", "http://192.168.0.1/", "acme .example", "-acme.example", "sam@acme"]
        {
            assert_eq!(company_domain(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn company_names_lose_case_punctuation_and_legal_forms() {
        let acme = Some("acme".to_owned());
        assert_eq!(normalise_company_name("ACME GmbH & Co. KG"), acme);
        assert_eq!(normalise_company_name("  Acme, Inc. "), acme);
        assert_eq!(normalise_company_name("A.C.M.E. Ltd"), acme);
        assert_eq!(normalise_company_name("Acme"), acme);
        assert_eq!(normalise_company_name("Smith & Sons"), normalise_company_name("Smith and Sons"));
        assert_eq!(normalise_company_name("Müller-Lüdenscheidt AG"), Some("müller lüdenscheidt".into()));
        assert_eq!(normalise_company_name("AG"), Some("ag".into()), "a name that is only a legal form stays");
        assert_eq!(normalise_company_name(" &. "), None);
    }

    #[test]
    fn tags_are_trimmed_and_kept_once_whatever_their_case() {
        let tags = ["VIP".to_owned(), " vip ".to_owned(), " ".to_owned(), "berlin ".to_owned()];
        assert_eq!(normalise_tags(&tags), vec!["VIP".to_owned(), "berlin".to_owned()]);
    }

    #[test]
    fn pasted_separators_italian_numbers_and_north_american_dialling_are_read() {
        assert_eq!(normalise_phone("030\u{a0}123\u{2013}4567", Some("49")).as_deref(), Some("+49301234567"));
        assert_eq!(normalise_phone("06 1234567", Some("39")).as_deref(), Some("+39061234567"));
        assert_eq!(normalise_phone("+39 06 1234567", None).as_deref(), Some("+39061234567"));
        assert_eq!(normalise_phone("011 49 30 1234567", Some("1")).as_deref(), Some("+49301234567"));
        assert_eq!(normalise_phone("+44 (0)20 7946 0958", None).as_deref(), Some("+442079460958"));
        assert_eq!(normalise_phone("(0)30 1234567", Some("49")).as_deref(), Some("+49301234567"));
    }

    #[test]
    fn a_country_gives_its_calling_code() {
        assert_eq!(calling_code_of("DE"), Some("49"));
        assert_eq!(calling_code_of(" it "), Some("39"));
        assert_eq!(calling_code_of("us"), Some("1"));
        assert_eq!(calling_code_of("XX"), None);
        assert_eq!(normalise_phone("030 1234567", calling_code_of("DE")).as_deref(), Some("+49301234567"));
    }
}
