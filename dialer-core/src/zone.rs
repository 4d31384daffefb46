//! Picks the time zone whose calling hours apply to a contact.
//!
//! The order is: the zone stored with the contact, else the zone implied by
//! the number, else the campaign's default. [`zone_for_number`] is the one
//! place that reads a number, so it can be swapped for a `phonenumber`-based
//! lookup later without touching its callers.
//!
//! The built-in table is deliberately partial. It holds country calling codes
//! of countries with a single zone, a few prefixes that split multi-zone
//! countries by landline area (Spain and Portugal's islands), and North
//! American area codes that lie wholly in one zone. Anything else (mobiles in
//! split countries, Australia, Russia, Mexico, Brazil, unlisted area codes)
//! returns `None` and falls to the campaign default. Area codes say where a
//! number was issued, not where its holder is now.

use chrono_tz::{America, Asia, Atlantic, Europe, Pacific, Tz};

/// Errors when resolving a contact's zone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// The stored zone name is not in the IANA database.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
}

/// Where a resolved zone came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZoneSource {
    /// The zone stored with the contact.
    Stored,
    /// The zone implied by the number's country or area code.
    Number,
    /// The campaign's default zone.
    CampaignDefault,
}

/// A contact's zone and how it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedZone {
    /// The zone whose calling hours apply.
    pub tz: Tz,
    /// Where it came from.
    pub source: ZoneSource,
}

/// Resolves the zone for a contact from its stored zone, its E.164 number and the campaign default.
///
/// A stored name that is not a known zone is an error rather than a silent
/// fallback: it means bad data got in at import.
pub fn resolve_zone(
    stored: Option<&str>,
    e164: &str,
    campaign_default: Tz,
) -> Result<ResolvedZone, ZoneError> {
    if let Some(name) = stored {
        let tz = name
            .parse::<Tz>()
            .map_err(|_| ZoneError::UnknownTimeZone(name.to_owned()))?;
        return Ok(ResolvedZone {
            tz,
            source: ZoneSource::Stored,
        });
    }
    Ok(match zone_for_number(e164) {
        Some(tz) => ResolvedZone {
            tz,
            source: ZoneSource::Number,
        },
        None => ResolvedZone {
            tz: campaign_default,
            source: ZoneSource::CampaignDefault,
        },
    })
}

/// Returns the single zone an E.164 number (`+` and digits) implies, if the built-in table knows one.
pub fn zone_for_number(e164: &str) -> Option<Tz> {
    let digits = e164.strip_prefix('+')?;
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    PREFIXES
        .iter()
        .filter(|(prefix, _)| digits.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|&(_, tz)| tz)
}

const NEW_YORK: Tz = America::New_York;
const CHICAGO: Tz = America::Chicago;
const DENVER: Tz = America::Denver;
const LOS_ANGELES: Tz = America::Los_Angeles;

/// Digits after `+` and the zone they imply; the longest matching prefix wins.
#[rustfmt::skip]
const PREFIXES: &[(&str, Tz)] = &[
    // Single-zone countries.
    ("30", Europe::Athens), ("31", Europe::Amsterdam), ("32", Europe::Brussels),
    ("33", Europe::Paris), ("36", Europe::Budapest), ("39", Europe::Rome),
    ("40", Europe::Bucharest), ("41", Europe::Zurich), ("420", Europe::Prague),
    ("43", Europe::Vienna), ("44", Europe::London), ("45", Europe::Copenhagen),
    ("46", Europe::Stockholm), ("47", Europe::Oslo), ("48", Europe::Warsaw),
    ("49", Europe::Berlin), ("353", Europe::Dublin), ("358", Europe::Helsinki),
    ("65", Asia::Singapore), ("81", Asia::Tokyo), ("82", Asia::Seoul),
    ("91", Asia::Kolkata),
    // Spain: landlines by province; 822/828/922/928 are the Canaries; mobiles are unknown.
    ("348", Europe::Madrid), ("349", Europe::Madrid),
    ("34822", Atlantic::Canary), ("34828", Atlantic::Canary),
    ("34922", Atlantic::Canary), ("34928", Atlantic::Canary),
    // Portugal: landlines; 292/295/296 are the Azores; mobiles are unknown.
    ("3512", Europe::Lisbon),
    ("351292", Atlantic::Azores), ("351295", Atlantic::Azores), ("351296", Atlantic::Azores),
    // North America: area codes wholly inside one zone.
    ("1201", NEW_YORK), ("1202", NEW_YORK), ("1203", NEW_YORK), ("1212", NEW_YORK),
    ("1215", NEW_YORK), ("1216", NEW_YORK), ("1267", NEW_YORK), ("1301", NEW_YORK),
    ("1302", NEW_YORK), ("1305", NEW_YORK), ("1347", NEW_YORK), ("1404", NEW_YORK),
    ("1407", NEW_YORK), ("1410", NEW_YORK), ("1412", NEW_YORK), ("1443", NEW_YORK),
    ("1470", NEW_YORK), ("1484", NEW_YORK), ("1508", NEW_YORK), ("1513", NEW_YORK),
    ("1516", NEW_YORK), ("1518", NEW_YORK), ("1561", NEW_YORK), ("1585", NEW_YORK),
    ("1603", NEW_YORK), ("1609", NEW_YORK), ("1610", NEW_YORK), ("1614", NEW_YORK),
    ("1617", NEW_YORK), ("1631", NEW_YORK), ("1646", NEW_YORK), ("1678", NEW_YORK),
    ("1703", NEW_YORK), ("1704", NEW_YORK), ("1718", NEW_YORK), ("1727", NEW_YORK),
    ("1732", NEW_YORK), ("1757", NEW_YORK), ("1770", NEW_YORK), ("1781", NEW_YORK),
    ("1786", NEW_YORK), ("1802", NEW_YORK), ("1804", NEW_YORK), ("1813", NEW_YORK),
    ("1856", NEW_YORK), ("1857", NEW_YORK), ("1860", NEW_YORK), ("1904", NEW_YORK),
    ("1908", NEW_YORK), ("1914", NEW_YORK), ("1917", NEW_YORK), ("1919", NEW_YORK),
    ("1929", NEW_YORK), ("1954", NEW_YORK), ("1973", NEW_YORK), ("1978", NEW_YORK),
    ("1313", America::Detroit), ("1248", America::Detroit), ("1734", America::Detroit),
    ("1317", America::Indiana::Indianapolis),
    ("1416", America::Toronto), ("1437", America::Toronto), ("1647", America::Toronto),
    ("1514", America::Toronto), ("1438", America::Toronto), ("1613", America::Toronto),
    ("1902", America::Halifax), ("1506", America::Moncton),
    ("1210", CHICAGO), ("1214", CHICAGO), ("1224", CHICAGO), ("1225", CHICAGO),
    ("1281", CHICAGO), ("1312", CHICAGO), ("1314", CHICAGO), ("1331", CHICAGO),
    ("1346", CHICAGO), ("1405", CHICAGO), ("1414", CHICAGO), ("1469", CHICAGO),
    ("1504", CHICAGO), ("1512", CHICAGO), ("1608", CHICAGO), ("1612", CHICAGO),
    ("1615", CHICAGO), ("1630", CHICAGO), ("1651", CHICAGO), ("1682", CHICAGO),
    ("1708", CHICAGO), ("1713", CHICAGO), ("1737", CHICAGO), ("1773", CHICAGO),
    ("1815", CHICAGO), ("1816", CHICAGO), ("1817", CHICAGO), ("1832", CHICAGO),
    ("1847", CHICAGO), ("1872", CHICAGO), ("1901", CHICAGO), ("1918", CHICAGO),
    ("1952", CHICAGO), ("1972", CHICAGO),
    ("1204", America::Winnipeg), ("1431", America::Winnipeg),
    ("1303", DENVER), ("1307", DENVER), ("1385", DENVER), ("1406", DENVER),
    ("1435", DENVER), ("1505", DENVER), ("1575", DENVER), ("1719", DENVER),
    ("1720", DENVER), ("1801", DENVER), ("1915", DENVER), ("1970", DENVER),
    ("1403", America::Edmonton), ("1587", America::Edmonton), ("1780", America::Edmonton),
    ("1825", America::Edmonton),
    ("1480", America::Phoenix), ("1520", America::Phoenix), ("1602", America::Phoenix),
    ("1623", America::Phoenix),
    ("1206", LOS_ANGELES), ("1209", LOS_ANGELES), ("1213", LOS_ANGELES), ("1253", LOS_ANGELES),
    ("1310", LOS_ANGELES), ("1323", LOS_ANGELES), ("1408", LOS_ANGELES), ("1415", LOS_ANGELES),
    ("1424", LOS_ANGELES), ("1425", LOS_ANGELES), ("1503", LOS_ANGELES), ("1510", LOS_ANGELES),
    ("1530", LOS_ANGELES), ("1559", LOS_ANGELES), ("1562", LOS_ANGELES), ("1619", LOS_ANGELES),
    ("1626", LOS_ANGELES), ("1628", LOS_ANGELES), ("1650", LOS_ANGELES), ("1661", LOS_ANGELES),
    ("1669", LOS_ANGELES), ("1702", LOS_ANGELES), ("1707", LOS_ANGELES), ("1714", LOS_ANGELES),
    ("1725", LOS_ANGELES), ("1747", LOS_ANGELES), ("1760", LOS_ANGELES), ("1805", LOS_ANGELES),
    ("1818", LOS_ANGELES), ("1831", LOS_ANGELES), ("1858", LOS_ANGELES), ("1909", LOS_ANGELES),
    ("1916", LOS_ANGELES), ("1925", LOS_ANGELES), ("1949", LOS_ANGELES), ("1951", LOS_ANGELES),
    ("1971", LOS_ANGELES),
    ("1604", America::Vancouver),
    ("1808", Pacific::Honolulu),
    ("1787", America::Puerto_Rico), ("1939", America::Puerto_Rico),
    ("1876", America::Jamaica),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_zone_wins_over_the_number() {
        let zone = resolve_zone(Some("Asia/Tokyo"), "+442079460000", Europe::Paris).unwrap();
        assert_eq!(
            zone,
            ResolvedZone {
                tz: Asia::Tokyo,
                source: ZoneSource::Stored
            }
        );
    }

    #[test]
    fn unknown_stored_zone_is_an_error() {
        let err = resolve_zone(Some("Mars/Olympus"), "+442079460000", Europe::Paris);
        assert_eq!(err, Err(ZoneError::UnknownTimeZone("Mars/Olympus".into())));
    }

    #[test]
    fn country_code_gives_the_zone_of_single_zone_countries() {
        for (number, tz) in [
            ("+442079460000", Europe::London),
            ("+33142685300", Europe::Paris),
            ("+4930901820", Europe::Berlin),
            ("+35316620000", Europe::Dublin),
            ("+31201234567", Europe::Amsterdam),
            ("+390612345678", Europe::Rome),
        ] {
            let zone = resolve_zone(None, number, America::New_York).unwrap();
            assert_eq!(
                zone,
                ResolvedZone {
                    tz,
                    source: ZoneSource::Number
                },
                "{number}"
            );
        }
    }

    #[test]
    fn split_countries_resolve_by_landline_area_only() {
        assert_eq!(zone_for_number("+34912345678"), Some(Europe::Madrid));
        assert_eq!(zone_for_number("+34928123456"), Some(Atlantic::Canary));
        assert_eq!(zone_for_number("+34612345678"), None);
        assert_eq!(zone_for_number("+351296123456"), Some(Atlantic::Azores));
        assert_eq!(zone_for_number("+61212345678"), None);
    }

    #[test]
    fn north_american_area_codes_give_their_zone() {
        assert_eq!(zone_for_number("+12125550100"), Some(NEW_YORK));
        assert_eq!(zone_for_number("+13125550100"), Some(CHICAGO));
        assert_eq!(zone_for_number("+13035550100"), Some(DENVER));
        assert_eq!(zone_for_number("+16025550100"), Some(America::Phoenix));
        assert_eq!(zone_for_number("+14155550100"), Some(LOS_ANGELES));
        assert_eq!(zone_for_number("+18085550100"), Some(Pacific::Honolulu));
    }

    #[test]
    fn unknown_area_or_malformed_number_falls_to_the_campaign_default() {
        for number in ["+19995550100", "442079460000", "+44 20 7946", "+", ""] {
            let zone = resolve_zone(None, number, Europe::Lisbon).unwrap();
            assert_eq!(zone.source, ZoneSource::CampaignDefault, "{number}");
            assert_eq!(zone.tz, Europe::Lisbon);
        }
    }

    #[test]
    fn table_has_no_duplicate_prefixes() {
        let mut prefixes: Vec<_> = PREFIXES.iter().map(|(p, _)| *p).collect();
        prefixes.sort_unstable();
        let before = prefixes.len();
        prefixes.dedup();
        assert_eq!(before, prefixes.len());
    }
}
