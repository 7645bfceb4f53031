"""The algorithm register entry of the lighting app: what it does, in plain words, in Italian
and English, for the citizens of a municipality that runs it.

Served at ``GET /apps/lighting/algorithm`` as HTML (default) or JSON (``Accept:
application/json`` or ``?format=json``). The numbers in the text — the safety floor, the
hysteresis, the distance to sensors, the traffic table — are those the running app uses, so the
register cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Final, Literal

from sinergia.apps.lighting.classes import TRAFFIC_BANDS, band_table
from sinergia.apps.lighting.service import LightingConfig

Language = Literal["it", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("it", "en")
REGISTER_ID: Final = "sinergia-adaptive-lighting"
REGISTER_VERSION: Final = "1.0"


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    paragraphs: tuple[str, ...]


def _percent(share: float) -> str:
    return f"{round(share * 100):d}%"


def _minutes(config: LightingConfig) -> int:
    return round(config.max_age.total_seconds() / 60)


def _sections_it(c: LightingConfig) -> tuple[str, list[Section]]:
    floor, hyst = _percent(c.limits.safe_minimum), _percent(c.limits.hysteresis)
    return "Illuminazione pubblica adattiva al traffico", [
        Section("purpose", "A cosa serve", (
            "Di notte molte strade sono quasi vuote, ma i lampioni restano accesi come "
            "nell'ora di punta. Questo algoritmo abbassa la luce quando passano meno veicoli "
            "e la rialza appena il traffico cresce, per consumare meno energia ed emettere "
            "meno CO₂ senza ridurre la sicurezza.",)),
        Section("inputs", "Quali dati usa", (
            "I conteggi dei veicoli dei sensori di traffico (solo numeri: nessuna targa, "
            "nessuna immagine, nessun dato personale); l'elenco dei lampioni con posizione, "
            "potenza e gruppo; la categoria illuminotecnica di progetto di ogni strada; gli "
            "orari di alba e tramonto; le eventuali regolazioni manuali degli operatori.",
            "Ogni gruppo di lampioni usa i sensori più vicini, entro "
            f"{c.assignment.max_distance_m:.0f} m "
            f"(al massimo {c.assignment.k}), e tra questi il conteggio più alto.")),
        Section("rule", "Come decide", (
            "La norma europea EN 13201 definisce le classi di illuminazione stradale da M1 "
            "(la più luminosa) a M6. La tabella qui sotto dice quale classe richiede il "
            "traffico misurato; il lampione non supera mai la classe per cui la strada è "
            "stata progettata, e la luce necessaria si ottiene regolando la potenza in "
            "proporzione alla luminanza della classe.",
            "Se il traffico aumenta, la luce sale subito. Se diminuisce, scende solo quando "
            f"il traffico è chiaramente più basso (almeno il {hyst} sotto la soglia), così "
            "le luci non oscillano.")),
        Section("limits", "Limiti e garanzie", (
            f"La luce non scende mai sotto il {floor} della potenza piena. "
            "Nessun gruppo resta mai sotto la classe che il suo traffico richiede.",
            f"Se un sensore non invia dati da più di {_minutes(c)} minuti, o un gruppo non ha "
            "sensori vicini, la strada resta alla luce piena di progetto.",
            "L'algoritmo non accende né spegne i lampioni: lo fanno gli interruttori "
            "crepuscolari dei quadri elettrici. I risparmi sono stime: potenza nominale "
            "moltiplicata per il livello di regolazione e per le ore di accensione, "
            "confrontate con la potenza piena; la CO₂ evitata usa il fattore di emissione "
            "dei consumi elettrici italiani "
            f"pubblicato da ISPRA ({c.co2_kg_per_kwh:.2f} kg CO₂/kWh).")),
        Section("oversight", "Controllo umano", (
            "Un operatore può sempre imporre un livello a un gruppo o a un singolo lampione "
            "(attributo manualIlluminanceLevel, da 0 a 1): la sua scelta prevale "
            f"sull'algoritmo, sempre entro il minimo di sicurezza del {floor}. Per tornare "
            "alla regolazione automatica basta cancellare l'attributo.",
            "Ogni decisione e ogni livello scritto restano nello storico della piattaforma "
            "e si possono verificare.")),
        Section("results", "Risultati pubblici", (
            "Energia consumata, energia risparmiata e CO₂ evitata sono pubblicate per gruppo, "
            "per quadro elettrico e per l'intera città come entità LightingEnergyReport, "
            "leggibili da chiunque tramite l'API della piattaforma.",)),
    ]


def _sections_en(c: LightingConfig) -> tuple[str, list[Section]]:
    floor, hyst = _percent(c.limits.safe_minimum), _percent(c.limits.hysteresis)
    return "Traffic-adaptive street lighting", [
        Section("purpose", "What it is for", (
            "At night many streets are nearly empty, yet the street lights burn as brightly "
            "as at rush hour. This algorithm dims the lights when fewer vehicles pass and "
            "brightens them as soon as traffic grows, to use less energy and emit less CO₂ "
            "without making the roads less safe.",)),
        Section("inputs", "What data it uses", (
            "Vehicle counts from traffic sensors (numbers only: no number plates, no images, "
            "no personal data); the list of street lights with their place, power and group; "
            "the lighting class each road was designed for; the times of sunset and sunrise; "
            "any manual setting made by an operator.",
            "Each group of lights uses the nearest sensors, within "
            f"{c.assignment.max_distance_m:.0f} m "
            f"(at most {c.assignment.k}), and the highest count among them.")),
        Section("rule", "How it decides", (
            "The European standard EN 13201 defines road-lighting classes from M1 (the "
            "brightest) to M6. The table below says which class the measured traffic "
            "requires; a light never goes above the class its road was designed for, and "
            "the light needed is obtained by setting the power in proportion to the class's "
            "luminance.",
            "When traffic grows, the light goes up at once. When it falls, the light goes "
            f"down only when traffic is clearly lower (at least {hyst} below the threshold), "
            "so the lights do not flicker.")),
        Section("limits", "Limits and safeguards", (
            f"The light never goes below {floor} of full power. No group is ever below the "
            "class its traffic requires.",
            f"If a sensor has sent nothing for more than {_minutes(c)} minutes, or a group "
            "has no sensor nearby, the road stays at its full design light.",
            "The algorithm does not switch lights on or off: the twilight switches of the "
            "control cabinets do. Savings are estimates: rated power multiplied by the "
            "dimming level and by the hours lit, compared with full power; CO₂ avoided "
            "uses the emission factor of "
            f"electricity consumed in Italy published by ISPRA ({c.co2_kg_per_kwh:.2f} kg "
            "CO₂/kWh).")),
        Section("oversight", "Human oversight", (
            "An operator can always set a level for a group or a single light (attribute "
            "manualIlluminanceLevel, from 0 to 1): that choice wins over the algorithm, "
            f"always within the safety floor of {floor}. Deleting the attribute returns "
            "the light to automatic control.",
            "Every decision and every level written stays in the platform's history and "
            "can be checked.")),
        Section("results", "Public results", (
            "Energy used, energy saved and CO₂ avoided are published per group, per control "
            "cabinet and for the whole city as LightingEnergyReport entities, readable by "
            "anyone through the platform's API.",)),
    ]


SOURCES: Final = (
    "EN 13201-2:2015, Road lighting — Performance requirements (Table 1, M classes)",
    "CEN/TR 13201-1:2014, Road lighting — Guidelines on selection of lighting classes",
    "UNI 11248:2016, Illuminazione stradale — Selezione delle categorie illuminotecniche",
    "ISPRA, Fattori di emissione atmosferica di gas a effetto serra nel settore elettrico "
    "nazionale e nei principali Paesi europei",
)


def _sections(language: Language, config: LightingConfig) -> tuple[str, list[Section]]:
    return _sections_it(config) if language == "it" else _sections_en(config)


def register_json(language: Language, config: LightingConfig | None = None) -> dict[str, Any]:
    config = config or LightingConfig()
    title, sections = _sections(language, config)
    return {
        "id": REGISTER_ID, "version": REGISTER_VERSION, "language": language,
        "title": title,
        "sections": [{"key": s.key, "title": s.title, "text": list(s.paragraphs)}
                     for s in sections],
        "trafficClasses": band_table(),
        "parameters": {
            "safeMinimumLevel": config.limits.safe_minimum,
            "hysteresis": config.limits.hysteresis,
            "sensorsPerGroup": config.assignment.k,
            "sensorMaxDistanceMetres": config.assignment.max_distance_m,
            "trafficMaxAgeMinutes": _minutes(config),
            "co2KgPerKWh": config.co2_kg_per_kwh,
        },
        "sources": list(SOURCES),
    }


_TABLE_HEAD: Final = {
    "it": ("Veicoli all'ora", "Classe EN 13201", "Luminanza minima (cd/m²)"),
    "en": ("Vehicles per hour", "EN 13201 class", "Minimum luminance (cd/m²)"),
}
_SOURCES_TITLE: Final = {"it": "Fonti", "en": "Sources"}
_OTHER: Final = {"it": ("en", "English"), "en": ("it", "Italiano")}


def _range(minimum: float, maximum: float | None, language: Language) -> str:
    if maximum is None:
        return f"≥ {minimum:.0f}"
    return (f"{minimum:.0f} to {maximum:.0f}" if language == "en"
            else f"da {minimum:.0f} a {maximum:.0f}")


def register_html(language: Language, config: LightingConfig | None = None) -> str:
    config = config or LightingConfig()
    title, sections = _sections(language, config)
    parts = [f'<!doctype html>\n<html lang="{language}">\n<head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{escape(title)}</title>"
             "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
             "padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #999;"
             "padding:.25rem .6rem;text-align:left}</style></head>\n<body>",
             f"<p><a href=\"?lang={_OTHER[language][0]}\">{_OTHER[language][1]}</a></p>",
             f"<h1>{escape(title)}</h1>"]
    for section in sections:
        parts.append(f'<h2 id="{section.key}">{escape(section.title)}</h2>')
        parts += [f"<p>{escape(paragraph)}</p>" for paragraph in section.paragraphs]
        if section.key == "rule":
            head = _TABLE_HEAD[language]
            parts.append("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
                         + "</tr></thead><tbody>")
            upper: float | None = None
            for band in TRAFFIC_BANDS:
                parts.append(f"<tr><td>{escape(_range(band.min_vph, upper, language))}</td>"
                             f"<td>{band.needs.name}</td><td>{band.needs.luminance:.2f}</td></tr>")
                upper = band.min_vph
            parts.append("</tbody></table>")
    parts.append(f"<h2>{_SOURCES_TITLE[language]}</h2><ul>")
    parts += [f"<li>{escape(source)}</li>" for source in SOURCES]
    parts.append(f"</ul><p><small>{REGISTER_ID} v{REGISTER_VERSION}</small></p></body></html>")
    return "\n".join(parts)
