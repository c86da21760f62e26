"""Word lists, MITRE ATT&CK techniques and per-family templates for the synthetic demo data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any

# People are invented: first names are common, surnames are made up.
FIRST_NAMES = (
    "Alex", "Sam", "Jordan", "Robin", "Casey", "Morgan", "Taylor", "Jamie", "Avery", "Riley",
    "Quinn", "Dana", "Noor", "Priya", "Mateo", "Lena", "Yuki", "Tomas", "Ines", "Kofi",
    "Elif", "Marta", "Nils", "Ravi", "Sofia", "Hugo", "Ana", "Leila", "Piotr", "Chen",
)
LAST_NAMES = (
    "Ashvale", "Brindlecombe", "Corrowen", "Dunmarsh", "Elsterby", "Fennimore", "Garrowick",
    "Hollingrave", "Islesworth", "Jorvale", "Kestlemere", "Larkspire", "Marrowfield", "Northgale",
    "Oakenshaw", "Penhallow", "Quenbury", "Ravelston", "Stourwick", "Thornlea", "Ulverdale",
    "Vantremont", "Wexcombe", "Yarrowby", "Zellington", "Amberleigh", "Brackenridge", "Coldharbour",
)
EXEC_TITLES = ("CFO", "CEO", "COO", "Finance Director", "Head of Treasury", "General Counsel")

# (name, host prefix, second octet of its internal network)
BUSINESS_UNITS = (
    ("Finance", "fin", 12), ("Human Resources", "hr", 14), ("Sales", "sal", 16),
    ("Marketing", "mkt", 18), ("Engineering", "eng", 20), ("Legal", "leg", 22),
    ("Procurement", "prc", 24), ("Customer Support", "sup", 26), ("IT Operations", "ops", 28),
    ("Research and Development", "rnd", 30), ("Treasury", "try", 32), ("Logistics", "log", 34),
)
SERVER_ROLES = ("app", "db", "sql", "web", "jump", "batch", "etl", "sftp")
COUNTRIES = (
    "the Netherlands", "Romania", "Russia", "Brazil", "Nigeria", "Vietnam", "Singapore",
    "the United States", "Germany", "Bulgaria", "Hong Kong", "Ukraine", "India", "Moldova",
)
# RFC 5737 documentation ranges: never a real host.
ATTACKER_NETS = ("203.0.113", "198.51.100", "192.0.2")
DOMAIN_PREFIXES = (
    "secure", "login", "account", "portal", "cdn", "update", "docs", "sso", "verify", "mail",
    "share", "auth", "files", "billing", "support", "sync",
)
DOMAIN_WORDS = (
    "m1crosoft", "office365", "docu-sign", "sharepoint", "payroll", "invoice", "okta-id",
    "dropbox-files", "adobe-cloud", "zoom-meet", "onedrive", "helpdesk", "examp1e-corp",
    "paperless", "wetransfer-dl", "outlook-web",
)
# Reserved or example top-level domains (RFC 2606, RFC 6761): clearly fake.
DOMAIN_TLDS = ("example", "test", "invalid", "example.net", "example.org")
URL_PATHS = (
    "/auth/login.php", "/invoice/view.html", "/wp-content/uploads/doc.zip", "/dl/update.msi",
    "/owa/session", "/s/shared-document", "/api/v2/collect", "/signin/verify", "/files/report.iso",
)
SENDER_LOCALS = (
    "billing", "accounts", "no-reply", "it-support", "hr-team", "payroll", "docusign",
    "security-alert", "ap-invoices", "mailbox-admin",
)
SUBJECTS = (
    "Invoice overdue - action required", "Your mailbox storage is full",
    "Payroll adjustment - please review",
    "Shared document: Q3 budget review", "DocuSign: please sign the updated contract",
    "Password expires today", "Remittance advice", "Voicemail received (0:42)",
    "HR policy update - acknowledge by Friday", "Unusual sign-in activity detected",
    "Purchase order PO-48213", "Delivery failed: reschedule your parcel",
)
ATTACHMENTS = (
    "Invoice_48213.xlsm", "Remittance_Advice.html", "PO-2291.zip", "Scan_0417.pdf.iso",
    "Contract_update.docm", "Payment_details.one", "Statement_Q3.img", "Voicemail_0042.htm",
)
PROCESSES = (
    "powershell.exe -enc", "rundll32.exe", "mshta.exe", "regsvr32.exe", "wscript.exe", "cmd.exe /c",
)
MALWARE = (
    "QakBot", "IcedID", "AsyncRAT", "Remcos", "Lumma Stealer", "RedLine Stealer", "Pikabot",
    "DarkGate", "SocGholish", "Agent Tesla", "Latrodectus", "Emotet",
)
RANSOMWARE = (
    "LockBit 3.0", "BlackCat/ALPHV", "Akira", "Royal", "Play", "Black Basta", "Medusa", "Rhysida",
    "BlackSuit", "8Base",
)
C2_FRAMEWORKS = ("Cobalt Strike", "Sliver", "Brute Ratel C4", "Havoc", "Mythic", "Metasploit")
EDRS = (
    "Microsoft Defender for Endpoint", "CrowdStrike Falcon", "SentinelOne", "Sophos Intercept X",
    "Elastic Defend",
)
SIEMS = ("Splunk ES", "Microsoft Sentinel", "Elastic SIEM", "QRadar", "Google SecOps")
EMAIL_GATEWAYS = ("Proofpoint", "Mimecast", "Defender for Office 365", "Abnormal Security")
IDPS = ("Okta", "Entra ID", "Ping Identity")
NETSECS = ("Palo Alto NGFW", "FortiGate", "Zscaler Internet Access", "Cisco Umbrella", "Darktrace")
DLPS = ("Microsoft Purview DLP", "Netskope", "Forcepoint DLP", "Digital Guardian")
CLOUD_DETECTORS = (
    "AWS GuardDuty", "Wiz", "Microsoft Defender for Cloud", "Prisma Cloud", "AWS Security Hub",
)
DDOS_PROVIDERS = (
    "Cloudflare", "Akamai Prolexic", "AWS Shield Advanced", "the ISP scrubbing service",
)
VENDORS = (
    "Northwind Traders", "Fabrikam Supplies", "Contoso Logistics", "Tailspin Parts",
    "Woodgrove Services", "Litware Components", "Adventure Works", "Proseware Inc.",
)
# (CVE, product, kind, public host): real, widely exploited edge-device vulnerabilities.
VULNERABILITIES = (
    ("CVE-2023-46805", "Ivanti Connect Secure", "authentication bypass", "vpn.example.com"),
    ("CVE-2024-21887", "Ivanti Connect Secure", "command injection", "vpn.example.com"),
    ("CVE-2023-4966", "Citrix NetScaler ADC", "session token leak (Citrix Bleed)",
     "remote.example.com"),
    ("CVE-2024-3400", "Palo Alto GlobalProtect", "OS command injection", "gp.example.com"),
    ("CVE-2023-27997", "FortiGate SSL-VPN", "heap-based buffer overflow", "sslvpn.example.com"),
    ("CVE-2023-34362", "MOVEit Transfer", "SQL injection", "mft.example.com"),
    ("CVE-2023-22515", "Atlassian Confluence", "broken access control", "wiki.example.com"),
    ("CVE-2024-1709", "ConnectWise ScreenConnect", "authentication bypass",
     "support.example.com"),
)
WEBAPPS = (
    ("customer portal", "portal.example.com"), ("partner extranet", "extranet.example.com"),
    ("online shop", "shop.example.com"), ("careers site", "careers.example.com"),
    ("payments API", "api.example.com"), ("support site", "help.example.com"),
)
SQLI_PATHS = (
    "/search?q=%27%20OR%201%3D1--", "/api/v1/orders?id=1%20AND%20SLEEP(5)",
    "/products?cat=1%27%20UNION%20SELECT%20NULL,NULL--", "/login?user=admin%27--",
)
CLOUD_STORAGE = (("AWS S3", "bucket"), ("Azure Blob Storage", "container"),
                 ("Google Cloud Storage", "bucket"))
BUCKET_WORDS = (
    "exports", "backups", "reports", "uploads", "invoices", "logs", "datalake", "shared",
)
ENVIRONMENTS = ("prod", "staging", "dev", "archive")
IAM_ROLES = (
    "ci-deploy-role", "legacy-admin", "lambda-exec-reporting", "terraform-runner",
    "svc-backup-sync", "data-pipeline-role",
)
REPOS = (
    "payments-api", "customer-portal", "data-pipeline", "mobile-backend", "infra-terraform",
    "reporting-service", "identity-gateway",
)
# Made-up package names (typosquats and internal-looking names), not real malicious packages.
PACKAGES = (
    ("reqeusts-oauthlib2", "PyPI"), ("py-cryptographyx", "PyPI"),
    ("examplecorp-auth-client", "PyPI"),
    ("lodash-utilx", "npm"), ("event-streamz", "npm"), ("examplecorp-eslint-config", "npm"),
    ("fastjsonn-parse", "npm"), ("urllib4-compat", "PyPI"),
)
DEVICES = (
    "Dell Latitude 7440 laptop", "MacBook Pro laptop", "ThinkPad T14 laptop", "corporate iPhone 15",
    "corporate Galaxy S23", "Surface Pro tablet",
)
LOSS_PLACES = (
    "on a train", "from a parked car", "at an airport security checkpoint", "in a taxi",
    "from a hotel room", "at a customer site", "from a cafe table", "during a conference",
)
DATA_KINDS = (
    "customer contact exports", "payroll records", "supplier bank details",
    "the quarterly forecast",
    "product design documents", "a CRM export", "employee performance reviews",
    "signed customer contracts", "pricing spreadsheets",
)
PERSONAL_STORAGE = (
    "a personal Dropbox account", "a personal Google Drive", "WeTransfer", "personal webmail",
    "an unapproved USB drive",
)

# id -> (name, tactic); tactic is the one that fits how these incidents use the technique.
TECHNIQUES = {
    "T1566.001": ("Spearphishing Attachment", "Initial Access"),
    "T1566.002": ("Spearphishing Link", "Initial Access"),
    "T1598.003": ("Spearphishing Link", "Reconnaissance"),
    "T1204.001": ("Malicious Link", "Execution"),
    "T1204.002": ("Malicious File", "Execution"),
    "T1059.001": ("PowerShell", "Execution"),
    "T1059.004": ("Unix Shell", "Execution"),
    "T1059.006": ("Python", "Execution"),
    "T1059.007": ("JavaScript", "Execution"),
    "T1027": ("Obfuscated Files or Information", "Defense Evasion"),
    "T1218.011": ("Rundll32", "Defense Evasion"),
    "T1055": ("Process Injection", "Defense Evasion"),
    "T1562.001": ("Disable or Modify Tools", "Defense Evasion"),
    "T1564.008": ("Email Hiding Rules", "Defense Evasion"),
    "T1656": ("Impersonation", "Defense Evasion"),
    "T1056.003": ("Web Portal Capture", "Credential Access"),
    "T1557": ("Adversary-in-the-Middle", "Credential Access"),
    "T1539": ("Steal Web Session Cookie", "Credential Access"),
    "T1528": ("Steal Application Access Token", "Credential Access"),
    "T1621": ("Multi-Factor Authentication Request Generation", "Credential Access"),
    "T1110.003": ("Password Spraying", "Credential Access"),
    "T1110.004": ("Credential Stuffing", "Credential Access"),
    "T1003.001": ("LSASS Memory", "Credential Access"),
    "T1552.001": ("Credentials In Files", "Credential Access"),
    "T1556": ("Modify Authentication Process", "Credential Access"),
    "T1078": ("Valid Accounts", "Initial Access"),
    "T1078.004": ("Cloud Accounts", "Initial Access"),
    "T1133": ("External Remote Services", "Initial Access"),
    "T1190": ("Exploit Public-Facing Application", "Initial Access"),
    "T1195.001": ("Compromise Software Dependencies and Development Tools", "Initial Access"),
    "T1589.001": ("Credentials", "Reconnaissance"),
    "T1595.002": ("Vulnerability Scanning", "Reconnaissance"),
    "T1583.001": ("Domains", "Resource Development"),
    "T1586.002": ("Email Accounts", "Resource Development"),
    "T1053.003": ("Cron", "Persistence"),
    "T1053.005": ("Scheduled Task", "Persistence"),
    "T1098.001": ("Additional Cloud Credentials", "Persistence"),
    "T1098.005": ("Device Registration", "Persistence"),
    "T1505.003": ("Web Shell", "Persistence"),
    "T1580": ("Cloud Infrastructure Discovery", "Discovery"),
    "T1526": ("Cloud Service Discovery", "Discovery"),
    "T1619": ("Cloud Storage Object Discovery", "Discovery"),
    "T1021.001": ("Remote Desktop Protocol", "Lateral Movement"),
    "T1570": ("Lateral Tool Transfer", "Lateral Movement"),
    "T1005": ("Data from Local System", "Collection"),
    "T1039": ("Data from Network Shared Drive", "Collection"),
    "T1074.001": ("Local Data Staging", "Collection"),
    "T1114.002": ("Remote Email Collection", "Collection"),
    "T1114.003": ("Email Forwarding Rule", "Collection"),
    "T1213": ("Data from Information Repositories", "Collection"),
    "T1213.002": ("Sharepoint", "Collection"),
    "T1530": ("Data from Cloud Storage", "Collection"),
    "T1560.001": ("Archive via Utility", "Collection"),
    "T1071.001": ("Web Protocols", "Command and Control"),
    "T1071.004": ("DNS", "Command and Control"),
    "T1105": ("Ingress Tool Transfer", "Command and Control"),
    "T1568.002": ("Domain Generation Algorithms", "Command and Control"),
    "T1573.002": ("Asymmetric Cryptography", "Command and Control"),
    "T1030": ("Data Transfer Size Limits", "Exfiltration"),
    "T1041": ("Exfiltration Over C2 Channel", "Exfiltration"),
    "T1048.003": ("Exfiltration Over Unencrypted Non-C2 Protocol", "Exfiltration"),
    "T1052.001": ("Exfiltration over USB", "Exfiltration"),
    "T1537": ("Transfer Data to Cloud Account", "Exfiltration"),
    "T1567.002": ("Exfiltration to Cloud Storage", "Exfiltration"),
    "T1486": ("Data Encrypted for Impact", "Impact"),
    "T1489": ("Service Stop", "Impact"),
    "T1490": ("Inhibit System Recovery", "Impact"),
    "T1496": ("Resource Hijacking", "Impact"),
    "T1498.001": ("Direct Network Flood", "Impact"),
    "T1498.002": ("Reflection Amplification", "Impact"),
    "T1499.002": ("Service Exhaustion Flood", "Impact"),
    "T1499.003": ("Application Exhaustion Flood", "Impact"),
    "T1610": ("Deploy Container", "Execution"),
}

SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_NOTES = {
    "critical": (
        "Business-critical systems or data are affected and the impact is ongoing; act now.",
        "The business impact is material; the incident manager should take over immediately.",
    ),
    "high": (
        "This needs containment and follow-up today.",
        "Treat the affected accounts, systems and data as at risk until proven otherwise.",
    ),
    "medium": (
        "There is no evidence of further spread yet, but follow-up is needed this week.",
        "Impact appears contained, although the root cause still needs fixing.",
    ),
    "low": (
        "Exposure appears limited and no malicious follow-on activity was observed.",
        "Risk is low; handle through the normal queue.",
    ),
}
ESCALATE_CHANCE = {"critical": 1.0, "high": 0.8, "medium": 0.22, "low": 0.03}
IOC_KINDS = ("ips", "domains", "hashes", "urls", "email_senders")


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one model behaves: its share of calls, speed, verbosity and request id style."""

    name: str
    weight: float
    reanalysis_weight: float
    tokens_per_second: tuple[float, float]
    latency_seconds: tuple[float, float]
    confidence: tuple[float, float]
    verbosity: float
    request_id_style: str
    extra_techniques: tuple[int, int]


MODELS = (
    ModelProfile("gpt-4o-mini", 52, 8, (70, 120), (0.4, 1.5), (0.62, 0.9), 1.0, "openai", (0, 2)),
    ModelProfile("gpt-4o", 12, 30, (45, 85), (0.6, 2.0), (0.72, 0.95), 1.1, "openai", (1, 3)),
    ModelProfile("claude-sonnet-4", 8, 24, (45, 75), (0.8, 2.5), (0.74, 0.96), 1.25, "anthropic",
                 (1, 3)),
    ModelProfile("claude-3-5-sonnet-20241022", 5, 10, (45, 70), (0.8, 2.5), (0.7, 0.94), 1.2,
                 "anthropic", (1, 3)),
    ModelProfile("gemini-1.5-pro", 7, 16, (50, 90), (0.7, 2.2), (0.68, 0.93), 1.1, "google",
                 (0, 3)),
    ModelProfile("gemini-2.0-flash", 6, 6, (130, 220), (0.3, 1.0), (0.6, 0.88), 0.95, "google",
                 (0, 2)),
    # Runs locally through Ollama: no price in genai_prices, so the store records no cost.
    ModelProfile("llama3.1:8b", 10, 6, (30, 60), (0.2, 1.0), (0.45, 0.8), 0.8, "ollama", (0, 1)),
)


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of incident: how often it happens, how it reads, how a model analyses it."""

    key: str
    category: str
    weight: float
    severity: tuple[float, float, float, float]
    titles: tuple[str, ...]
    openings: tuple[str, ...]
    details: tuple[str, ...]
    findings: tuple[str, ...]
    summaries: tuple[str, ...]
    core: tuple[str, ...]
    extra: tuple[str, ...]
    timeline: tuple[tuple[int, str], ...]
    recommendations: tuple[str, ...]
    assets: tuple[str, ...]
    # Extra IOCs per kind beyond those the texts mention: (least, most) for each of IOC_KINDS.
    iocs: tuple[tuple[int, int], ...] = ((0, 0),) * 5
    url_slot: str = "url"  # the slot that makes this family's extra URL IOCs
    storm_chance: float = 0.0
    campaign: bool = field(default=False)



class Slots(dict[str, str]):
    """Template values, drawn on first use from an RNG or from a campaign's pools."""

    __slots__ = ("rng", "random", "pools")

    def __init__(self, rng: Random, pools: dict[str, tuple[str, ...]]) -> None:
        super().__init__()
        self.rng = rng
        self.random = rng.random
        self.pools = pools

    def pick(self, options: tuple[Any, ...]) -> Any:
        """One item of options, uniformly."""
        return options[int(self.random() * len(options))]

    def __missing__(self, key: str) -> str:
        options = self.pools.get(key) or TABLES.get(key)
        if options is None:
            MAKERS[key](self)
            return self[key]
        value = self[key] = options[int(self.random() * len(options))]
        return value


def _person(s: Slots) -> tuple[str, str]:
    random = s.random
    first = FIRST_NAMES[int(random() * len(FIRST_NAMES))]
    return first, LAST_NAMES[int(random() * len(LAST_NAMES))]


def _user(s: Slots) -> None:
    first, last = _person(s)
    s["user"] = f"{first} {last}"
    s["user_login"] = f"{first[0]}{last}".lower()
    s["user_email"] = f"{first}.{last}@example.com".lower()


def _executive(s: Slots) -> None:
    first, last = _person(s)
    s["exec_name"] = f"{first} {last}"
    s["exec_title"] = s.pick(EXEC_TITLES)
    s["exec_email"] = f"{first}.{last}@example.com".lower()


def _recipient(s: Slots) -> None:
    first, last = _person(s)
    s["recipient_email"] = f"{first}.{last}@example.org".lower()


def fresh_ip(s: Slots) -> str:
    """An address in a documentation range."""
    return f"{s.pick(ATTACKER_NETS)}.{1 + int(s.random() * 254)}"


def fresh_domain(s: Slots) -> str:
    """A lookalike attacker domain under a reserved top-level domain."""
    random = s.random
    prefix = DOMAIN_PREFIXES[int(random() * len(DOMAIN_PREFIXES))]
    word = DOMAIN_WORDS[int(random() * len(DOMAIN_WORDS))]
    return f"{prefix}-{word}.{DOMAIN_TLDS[int(random() * len(DOMAIN_TLDS))]}"


def fresh_url(s: Slots) -> str:
    """A URL on the incident's attacker domain."""
    return f"https://{s['domain']}{s.pick(URL_PATHS)}"


def fresh_sender(s: Slots) -> str:
    """A sender address on the incident's attacker domain."""
    return f"{s.pick(SENDER_LOCALS)}@{s['domain']}"


def fresh_attack_url(s: Slots) -> str:
    """A request URL carrying an SQL injection payload."""
    return f"https://{s['webapp_host']}{s.pick(SQLI_PATHS)}"


def _second_ip(s: Slots) -> None:
    pool = s.pools.get("ip")
    for _ in range(4):
        candidate = s.pick(pool) if pool else fresh_ip(s)
        if candidate != s["ip"]:
            break
    s["ip2"] = candidate


def _host(key: str, kind: str) -> Callable[[Slots], None]:
    def fill(s: Slots) -> None:
        s[key] = f"{s['bu_code']}-{kind}-{1 + int(s.random() * 400):03d}.corp.example"

    return fill


def _server(s: Slots) -> None:
    number = 1 + int(s.random() * 40)
    s["server"] = f"{s['bu_code']}-{s.pick(SERVER_ROLES)}-{number:02d}.corp.example"


def _cloud(s: Slots) -> None:
    code = s["bu_code"]
    s["bucket"] = f"{code}-{s.pick(BUCKET_WORDS)}-{s.pick(ENVIRONMENTS)}"
    s["cloud_account"] = f"{code}-prod ({10**11 + int(s.random() * 9 * 10**11)})"


def _setter(key: str, make: Callable[[Slots], str]) -> Callable[[Slots], None]:
    def fill(s: Slots) -> None:
        s[key] = make(s)

    return fill


def _group(keys: tuple[str, ...], options: tuple[tuple[Any, ...], ...]) -> Callable[[Slots], None]:
    def fill(s: Slots) -> None:
        s.update(zip(keys, options[int(s.random() * len(options))], strict=False))

    return fill


Maker = Callable[[Slots], None]


def _keys(keys: tuple[str, ...], fill: Maker) -> dict[str, Maker]:
    return dict.fromkeys(keys, fill)


NUMBERS = {
    "n_recipients": (3, 240), "n_days": (1, 45), "minutes": (2, 55), "n_clicks": (1, 9),
    "n_reporters": (2, 14), "n_hosts": (3, 60), "n_files": (120, 48000), "size_gb": (2, 480),
    "size_mb": (6, 900), "n_attempts": (1200, 180000), "n_accounts": (40, 4200),
    "n_ips": (30, 2600), "n_success": (1, 12), "n_rate": (40, 2400), "hours": (2, 30),
    "ratio": (6, 40), "n_records": (40, 25000), "n_conn": (300, 9000),
    "n_requests": (200, 60000), "n_rps": (8000, 450000), "gbps": (4, 380),
    "minutes_down": (3, 95), "pct": (8, 41), "n_push": (6, 40), "n_downloads": (40, 18000),
}
CHOICES = {
    "country": COUNTRIES, "subject": SUBJECTS, "attachment": ATTACHMENTS, "process": PROCESSES,
    "malware": MALWARE, "ransomware": RANSOMWARE, "c2": C2_FRAMEWORKS, "edr": EDRS,
    "siem": SIEMS, "email_gw": EMAIL_GATEWAYS, "idp": IDPS, "netsec": NETSECS, "dlp": DLPS,
    "cloud_detect": CLOUD_DETECTORS, "ddos_provider": DDOS_PROVIDERS, "vendor": VENDORS,
    "iam_role": IAM_ROLES, "repo": REPOS, "device": DEVICES, "loss_place": LOSS_PLACES,
    "data_kind": DATA_KINDS, "personal_storage": PERSONAL_STORAGE,
    "fileserver": tuple(f"fs-{n:02d}.corp.example" for n in range(1, 13)),
    "vpn_host": ("vpn.example.com", "remote.example.com", "sslvpn.example.com"),
    "interval": ("30", "45", "60", "120", "300", "600"), "port": ("3333", "4444", "5555", "14444"),
}
# Numbers come from a fixed table of 256 draws per slot: a table lookup is 3x faster than a maker.
_TABLE_RNG = Random(90210)
TABLES: dict[str, tuple[str, ...]] = {
    **{key: tuple(f"{_TABLE_RNG.randint(low, high):,}" for _ in range(256))
       for key, (low, high) in NUMBERS.items()},
    **CHOICES,
    "amount": tuple(f"EUR {_TABLE_RNG.randint(80, 4800) * 100:,}" for _ in range(256)),
}
# Each maker sets the slot it is named after (and, for groups, the slots that must agree with it).
MAKERS: dict[str, Maker] = {
    **_keys(("user", "user_login", "user_email"), _user),
    **_keys(("exec_name", "exec_title", "exec_email"), _executive),
    **_keys(("bu", "bu_code"), _group(("bu", "bu_code"), BUSINESS_UNITS)),
    **_keys(("bucket", "cloud_account"), _cloud),
    **_keys(("cve", "vuln_product", "vuln_kind", "vuln_host"),
            _group(("cve", "vuln_product", "vuln_kind", "vuln_host"), VULNERABILITIES)),
    **_keys(("webapp", "webapp_host"), _group(("webapp", "webapp_host"), WEBAPPS)),
    **_keys(("cloud_service", "resource"), _group(("cloud_service", "resource"), CLOUD_STORAGE)),
    **_keys(("package", "registry"), _group(("package", "registry"), PACKAGES)),
    "recipient_email": _recipient, "ip": _setter("ip", fresh_ip), "ip2": _second_ip,
    "domain": _setter("domain", fresh_domain), "url": _setter("url", fresh_url),
    "sender": _setter("sender", fresh_sender),
    "attack_url": _setter("attack_url", fresh_attack_url),
    "host": _host("host", "ws"), "laptop": _host("laptop", "lt"), "server": _server,
}
FRESH_IOCS = {"ip": fresh_ip, "domain": fresh_domain, "url": fresh_url, "sender": fresh_sender,
              "attack_url": fresh_attack_url}


PHISHING_ATTACHMENT = Family(
    key="phishing_attachment", category="Phishing", weight=8, severity=(1, 24, 52, 23),
    titles=(
        "Malicious attachment '{attachment}' opened on {host}",
        "Phishing e-mail with macro document executed by {user_login}",
        "{malware} delivery via phishing e-mail to {bu}",
        "Suspicious Office child process after phishing e-mail on {host}",
    ),
    openings=(
        "{user} ({bu}) opened the attachment {attachment} from an e-mail titled '{subject}' "
        "sent by {sender}.",
        "An e-mail titled '{subject}' from {sender} reached {n_recipients} mailboxes in {bu}, "
        "and {user_login} opened the attached {attachment} on {host}.",
        "{edr} flagged {host} after {user} opened {attachment}, received by e-mail from {sender}.",
    ),
    details=(
        "The sender domain was registered {n_days} days ago and the message failed SPF and DMARC.",
        "Within a minute the document spawned {process}, which downloaded a second stage from "
        "{domain}.",
        "The payload matches public reporting on {malware} loaders spread through invoice lures.",
        "{email_gw} let the message through because the attachment was password protected.",
        "Message trace shows the same attachment in {n_recipients} other mailboxes, none opened.",
        "The user says the e-mail looked like a routine request from {vendor}.",
    ),
    findings=(
        "{edr} alert 'Suspicious process launched by Office application' on {host} at "
        "{time_hm}; {process} started by the Office application.",
        "Proxy logs show {host} fetching {url} at {time_hm}; the domain was first seen "
        "{n_days} days ago.",
        "{email_gw} retro-scan marked the attachment malicious {minutes} minutes after delivery.",
        "Sandbox detonation of {attachment} shows a call-out to {ip} on port 443 and a dropped "
        "DLL.",
    ),
    summaries=(
        "{user_login} opened a malicious attachment ({attachment}) from {sender} on {host}, which "
        "launched {process} and fetched a second stage from {domain}. The chain is consistent "
        "with a {malware} loader.",
        "A phishing e-mail posing as {vendor} delivered {attachment} to {bu}; execution on {host} "
        "led to outbound connections to {ip}, matching known {malware} initial access.",
    ),
    core=("T1566.001", "T1204.002"),
    extra=("T1059.001", "T1105", "T1071.001", "T1218.011", "T1027"),
    timeline=(
        (-40, "E-mail '{subject}' from {sender} delivered to {user_email}"),
        (-25, "{user_login} opened {attachment} on {host}"),
        (-24, "Office spawned {process}"),
        (-23, "{host} connected to {domain} ({ip})"),
        (0, "{edr} alert raised; SOC triage started"),
    ),
    recommendations=(
        "Isolate {host} with {edr} and capture memory before reimaging.",
        "Purge every copy of the '{subject}' message with a content search.",
        "Block {domain} and {ip} at the proxy and firewall.",
        "Reset {user_login}'s password and revoke active sessions.",
        "Add the attachment hash to the {edr} block list.",
        "Hunt for the same hash and domain on all endpoints over the last 14 days.",
        "Block macro-enabled Office attachments from external senders at {email_gw}.",
    ),
    assets=("host", "user_email"),
    iocs=((0, 1), (0, 1), (1, 3), (0, 1), (0, 0)),
    storm_chance=0.2, campaign=True,
)

PHISHING_CREDENTIAL = Family(
    key="phishing_credential", category="Phishing", weight=10, severity=(0.5, 20, 52, 27.5),
    titles=(
        "Credential phishing link clicked by {user_login}",
        "Fake Microsoft 365 sign-in page at {domain}",
        "Phishing e-mail '{subject}' clicked in {bu}",
        "Possible credential harvest from {bu} via {domain}",
    ),
    openings=(
        "{user} from {bu} clicked a link in an e-mail titled '{subject}' and landed on a fake "
        "Microsoft 365 sign-in page at {domain}.",
        "{n_reporters} users reported an e-mail from {sender} asking them to review a shared "
        "document; {user_login} clicked the link before reporting it.",
        "{email_gw} rewrote and later blocked a link to {url}, but {user_login} had already "
        "visited it.",
    ),
    details=(
        "The page is an adversary-in-the-middle kit that proxies the real login and captures the "
        "session cookie.",
        "The user says they entered their password and approved an MFA prompt before noticing "
        "the address.",
        "{idp} shows a successful sign-in for {user_email} from {ip} ({country}) {minutes} "
        "minutes after the click.",
        "The sender is a compromised mailbox at {vendor}, so the message passed SPF and DKIM.",
        "The lure imitates a DocuSign envelope with the user's name in the subject.",
    ),
    findings=(
        "User report via the Report Phishing button at {time_hm}; headers show the message "
        "relayed through {ip}.",
        "Proxy logs show {user_login} on {host} requesting {url} at {time_hm}; category "
        "'newly registered domain'.",
        "{idp} risk detection 'unfamiliar sign-in properties' for {user_email} from {ip} "
        "({country}).",
        "{email_gw} click-time protection blocked {url} for {n_clicks} other users after the "
        "first click.",
    ),
    summaries=(
        "{user_login} submitted credentials to a phishing page at {domain} reached from an e-mail "
        "sent by {sender}. The kit proxies the real sign-in, so the session token may have been "
        "captured as well.",
        "A credential phishing e-mail ('{subject}') reached {bu} and at least one user entered "
        "credentials on {domain}; sign-ins from {ip} must be checked for session hijacking.",
    ),
    core=("T1566.002", "T1056.003"),
    extra=("T1204.001", "T1557", "T1078.004", "T1539"),
    timeline=(
        (-50, "Phishing e-mail from {sender} delivered to {user_email}"),
        (-32, "{user_login} clicked {url}"),
        (-30, "Credentials submitted to {domain}"),
        (-12, "Sign-in to {user_email} from {ip} ({country})"),
        (0, "User report received; SOC triage started"),
    ),
    recommendations=(
        "Reset {user_login}'s password and revoke all refresh tokens in {idp}.",
        "Block {domain} on the proxy and add {url} to the {email_gw} block list.",
        "Purge the '{subject}' message from all mailboxes.",
        "Review {idp} sign-in logs for {ip} across all accounts.",
        "Check {user_email} for new inbox rules, OAuth consents and MFA methods.",
        "Move the {bu} team to phishing-resistant MFA (FIDO2 keys).",
    ),
    assets=("user_email", "host"),
    iocs=((0, 1), (0, 1), (0, 0), (0, 1), (0, 1)),
    storm_chance=0.35, campaign=True,
)

PHISHING_REPORTED = Family(
    key="phishing_reported", category="Phishing", weight=9, severity=(0, 2, 24, 74),
    titles=(
        "Suspicious e-mail '{subject}' reported by {user_login}",
        "User-reported phishing: '{subject}'",
        "Phishing report from {bu}: sender {sender}",
    ),
    openings=(
        "{user} ({bu}) reported an e-mail titled '{subject}' from {sender} with the Report "
        "Phishing button.",
        "{user_login} forwarded a suspicious message from {sender} with the subject '{subject}' "
        "to the SOC mailbox.",
    ),
    details=(
        "The user did not click the link or open any attachment.",
        "The link points to {url}, which hosts a credential harvesting page.",
        "{n_recipients} other users received the same message; message trace shows no clicks.",
        "The sender domain {domain} was registered {n_days} days ago.",
    ),
    findings=(
        "Report Phishing submission from {user_email} at {time_hm}; {email_gw} verdict: phish.",
        "URL detonation of {url}: Microsoft 365 credential harvesting page.",
        "Message trace: {n_recipients} recipients, no clicks recorded by click-time protection.",
    ),
    summaries=(
        "{user_login} correctly reported a credential phishing e-mail from {sender} linking to "
        "{domain}; no click or credential entry was observed.",
        "A phishing e-mail ('{subject}') from {sender} was reported before anyone interacted with "
        "it, and it should now be purged from the other mailboxes.",
    ),
    core=("T1566.002",),
    extra=("T1598.003", "T1583.001"),
    timeline=(
        (-45, "E-mail from {sender} delivered to {n_recipients} mailboxes"),
        (-15, "{user_login} reported the message"),
        (0, "Automated investigation completed"),
    ),
    recommendations=(
        "Purge the '{subject}' message from all mailboxes.",
        "Block {domain} and the sender {sender} at {email_gw}.",
        "Check click-time protection logs for any clicks on {url}.",
        "Thank {user_login} for the report and close the ticket once purged.",
    ),
    assets=("user_email",),
    iocs=((0, 1), (0, 0), (0, 1), (0, 0), (0, 0)),
    storm_chance=0.6, campaign=True,
)

BEC = Family(
    key="bec", category="Business E-mail Compromise", weight=6, severity=(2, 34, 46, 18),
    titles=(
        "Fraudulent payment request impersonating the {exec_title}",
        "Bank detail change request from lookalike domain {domain}",
        "Possible business e-mail compromise in {bu}: {amount} wire requested",
    ),
    openings=(
        "{user} in {bu} received an urgent request to wire {amount} to a new supplier account, "
        "apparently from {exec_name} ({exec_title}).",
        "Accounts payable received a request from {sender}, posing as {vendor}, to change the "
        "bank details for upcoming invoices worth {amount}.",
    ),
    details=(
        "The sending domain {domain} differs from the real one by one character and was "
        "registered {n_days} days ago.",
        "The reply-to address points to a free webmail account.",
        "The payment team held the transfer pending a call-back to the known contact.",
        "{idp} shows {user_email} was accessed from {ip} ({country}) two days earlier.",
        "The thread hijacks a real conversation with {vendor} about an open purchase order.",
        "An inbox rule on {user_email} moved replies from {vendor} to the RSS Subscriptions "
        "folder.",
    ),
    findings=(
        "Finance flagged the request at {time_hm} because the call-back number did not match the "
        "vendor master data.",
        "{email_gw} impersonation protection tagged {sender} as a lookalike of the {exec_title}'s "
        "address.",
        "Unified audit log: New-InboxRule on {user_email} from {ip} ({country}) at {time_hm}.",
        "{idp} alert 'impossible travel' for {user_email}: office and {country} within {minutes} "
        "minutes.",
    ),
    summaries=(
        "An attacker impersonating {exec_name} ({exec_title}) asked {bu} to wire {amount}, using "
        "the lookalike domain {domain}. This is a classic business e-mail compromise aimed at "
        "accounts payable.",
        "The mailbox {user_email} appears compromised: a hidden inbox rule and sign-ins from {ip} "
        "({country}) point to an attacker preparing invoice fraud against {vendor}.",
    ),
    core=("T1656",),
    extra=("T1114.003", "T1564.008", "T1078.004", "T1583.001", "T1586.002"),
    timeline=(
        (-2800, "Lookalike domain {domain} first seen in mail flow"),
        (-600, "Sign-in to {user_email} from {ip} ({country})"),
        (-180, "Payment request from {sender} received by {user_email}"),
        (-30, "Finance raised the request with the SOC"),
        (0, "Case opened for business e-mail compromise"),
    ),
    recommendations=(
        "Contact the bank to hold or recall any transfer to the new beneficiary account.",
        "Block {domain} and the sender {sender} at {email_gw}.",
        "Remove hidden inbox rules and forwarding from {user_email} and reset the password.",
        "Confirm bank detail changes with {vendor} by phone, using the vendor master data number.",
        "Enable external-sender tagging and lookalike-domain detection for finance mailboxes.",
        "Review all payments approved by {bu} in the last 30 days for the same beneficiary.",
    ),
    assets=("user_email", "exec_email"),
    iocs=((0, 1), (0, 0), (0, 0), (0, 0), (0, 1)),
    storm_chance=0.1, campaign=True,
)

RANSOMWARE_FAMILY = Family(
    key="ransomware", category="Ransomware", weight=3, severity=(24, 56, 16, 4),
    titles=(
        "{ransomware} ransomware encryption on {server}",
        "Mass file renames with ransom note on {fileserver}",
        "Ransomware precursor: {c2} beacon and shadow copy deletion on {server}",
        "Ransomware outbreak in {bu}: {n_hosts} hosts affected",
    ),
    openings=(
        "{edr} detected mass file encryption on {server}, with files renamed to a random "
        "extension and a ransom note from {ransomware} in every folder.",
        "Users in {bu} reported that shares on {fileserver} were unreadable and contained a "
        "ransom note naming {ransomware}.",
        "{edr} blocked vssadmin.exe deleting shadow copies on {server}, started by a service "
        "account at an unusual hour.",
    ),
    details=(
        "The ransom note points to a Tor leak site and claims data was stolen before encryption.",
        "Initial access appears to be a VPN login for a service account from {ip} ({country}) "
        "without MFA.",
        "{c2} beacons to {domain} were seen from {host} for {n_days} days before encryption.",
        "The attacker used PsExec and RDP from {host} to push the payload to {n_hosts} servers.",
        "The backup server was targeted first; last week's offline copy is intact.",
        "About {size_gb} GB were uploaded to cloud storage with rclone the night before.",
    ),
    findings=(
        "{edr} alert 'Ransomware behaviour detected' on {server} at {time_hm}; {n_files} files "
        "modified in three minutes.",
        "{siem} correlation: vssadmin delete shadows /all /quiet and bcdedit recoveryenabled No on "
        "{server}.",
        "Helpdesk received {n_hosts} calls about unreadable files on {fileserver} from {time_hm}.",
        "Firewall shows {size_gb} GB outbound from {server} to {ip} over six hours.",
    ),
    summaries=(
        "{ransomware} ransomware encrypted data on {server} and {fileserver} after lateral "
        "movement from {host}. Shadow copies were deleted and data was likely sent to {ip} first.",
        "This is an active {ransomware} intrusion affecting {n_hosts} hosts in {bu}; the attacker "
        "entered through the VPN and used {c2} for command and control.",
    ),
    core=("T1486", "T1490"),
    extra=("T1021.001", "T1570", "T1003.001", "T1562.001", "T1567.002", "T1133", "T1489"),
    timeline=(
        (-2600, "VPN login for svc-backup from {ip} ({country})"),
        (-2000, "{c2} beacon from {host} to {domain}"),
        (-400, "LSASS access (credential dumping) on {host}"),
        (-120, "{size_gb} GB uploaded from {server} to {ip}"),
        (-15, "Shadow copies deleted on {server}"),
        (0, "Encryption detected by {edr}"),
    ),
    recommendations=(
        "Isolate {server}, {fileserver} and {host} from the network now; do not power them off.",
        "Disable the compromised service account and reset privileged credentials, including "
        "krbtgt twice.",
        "Block {ip} and {domain} at the perimeter.",
        "Restore from the offline backup after verifying it is clean.",
        "Engage the incident response retainer and legal counsel about the data theft claim.",
        "Enforce MFA on the VPN for every account, including service accounts.",
        "Hunt for the {ransomware} hashes and PsExec service creation on all servers.",
    ),
    assets=("server", "fileserver", "host"),
    iocs=((0, 2), (0, 1), (2, 4), (0, 0), (0, 0)),
    campaign=True,
)

PASSWORD_SPRAYING = Family(
    key="password_spraying", category="Credential Attack", weight=5, severity=(0.5, 12, 44, 43.5),
    titles=(
        "Password spraying against {idp} accounts from {n_ips} IP addresses",
        "Spike in failed logins for {bu} accounts",
        "Distributed password spray from {n_ips} addresses against {bu} accounts",
    ),
    openings=(
        "{idp} recorded {n_attempts} failed sign-ins against {n_accounts} accounts within "
        "{minutes} minutes, from {n_ips} addresses including {ip} ({country}).",
        "{idp} logged a slow password spray against VPN sign-ins on {vpn_host}: one or two "
        "attempts per account across {n_accounts} accounts, from rotating residential proxies.",
    ),
    details=(
        "Each source tried only a few passwords to stay under the lockout threshold.",
        "{n_success} accounts, including {user_email}, had a successful login from the same "
        "infrastructure.",
        "Most targeted accounts are protected by MFA, which blocked the follow-up sessions.",
        "The user agent string is identical across sources, typical of an automated tool.",
        "The top source, {ip}, is listed on several abuse blocklists.",
    ),
    findings=(
        "{siem} alert 'Multiple failed logins from many sources' at {time_hm}: {n_attempts} "
        "failures in {minutes} minutes.",
        "{idp} flagged {ip} ({country}) for password spraying at {time_hm}.",
        "Account lockouts reported to the service desk for {n_accounts} users in {bu}.",
    ),
    summaries=(
        "A distributed password spray targeted {n_accounts} accounts from {n_ips} sources "
        "including {ip} and {ip2}. {n_success} accounts show a successful login and must be "
        "treated as compromised.",
        "Low-and-slow password guessing against {idp} came from {ip} and related proxies; the "
        "pattern avoids lockouts and is typical of spraying tools.",
    ),
    core=("T1110.003",),
    extra=("T1078", "T1133", "T1589.001"),
    timeline=(
        (-90, "First failed logins from {ip}"),
        (-60, "Attempt rate peaked at {n_rate} per minute"),
        (-20, "Successful login for {user_email} from {ip2}"),
        (0, "{siem} alert raised"),
    ),
    recommendations=(
        "Block {ip} and {ip2} and their ranges at the firewall.",
        "Reset passwords for the {n_success} accounts with successful logins and revoke sessions.",
        "Enforce MFA for every account in {bu} and review exclusions.",
        "Tune smart lockout in {idp} and ban common seasonal passwords.",
        "Check the targeted usernames against known breach corpora.",
    ),
    assets=("user_email",),
    iocs=((2, 6), (0, 0), (0, 0), (0, 0), (0, 0)),
    storm_chance=0.15, campaign=True,
)

CREDENTIAL_STUFFING = Family(
    key="credential_stuffing", category="Credential Attack", weight=4, severity=(0.5, 14, 46, 39.5),
    titles=(
        "Credential stuffing on the {webapp_host} login endpoint",
        "Automated logins with leaked credentials against {webapp}",
        "Login failure spike on {webapp_host} from {n_ips} sources",
    ),
    openings=(
        "The login endpoint of the {webapp} ({webapp_host}) received {n_attempts} login attempts "
        "with e-mail and password pairs, most for accounts that do not exist.",
        "The WAF in front of {webapp_host} counted {n_attempts} POST requests to /login from "
        "{n_ips} addresses in {minutes} minutes.",
    ),
    details=(
        "The credentials match a combo list that circulated on a paste site last month.",
        "{n_success} customer accounts were logged into successfully and their saved addresses "
        "viewed.",
        "The requests rotate user agents but share a TLS fingerprint.",
        "The top source, {ip}, belongs to a bulletproof hosting provider.",
        "No administrator accounts were targeted.",
    ),
    findings=(
        "WAF rate-limit rule triggered on /login at {time_hm}; top sources {ip} and {ip2}.",
        "{siem} alert at {time_hm}: login failure ratio above 95 percent for {webapp_host}.",
        "Customer support received {n_success} complaints about unrecognised logins.",
    ),
    summaries=(
        "Automated logins from {ip} and related addresses tried leaked credential pairs against "
        "{webapp_host}; {n_success} accounts were accessed. The volume and fingerprints point to "
        "a credential stuffing tool.",
        "The {webapp} was targeted with credential stuffing from {n_ips} sources; most attempts "
        "failed, but accounts that reuse passwords were taken over.",
    ),
    core=("T1110.004",),
    extra=("T1078", "T1589.001"),
    timeline=(
        (-120, "Login attempts from {ip} began"),
        (-70, "Attempt rate peaked at {n_rate} per minute"),
        (-40, "First successful customer login from {ip2}"),
        (0, "WAF rate-limit alert escalated"),
    ),
    recommendations=(
        "Block {ip} and {ip2} at the WAF and enable bot management on /login.",
        "Force password resets for the {n_success} accessed customer accounts.",
        "Add breached-password checks at sign-up and login.",
        "Offer customers MFA and notify affected users.",
        "Lower the per-IP login rate limit for {webapp_host}.",
    ),
    assets=("webapp_host",),
    iocs=((3, 8), (0, 0), (0, 0), (0, 0), (0, 0)),
    campaign=True,
)

DATA_EXFILTRATION = Family(
    key="data_exfiltration", category="Data Exfiltration", weight=4, severity=(4, 38, 43, 15),
    titles=(
        "Large outbound transfer from {server} to {ip}",
        "Possible data exfiltration via rclone from {host}",
        "Archive staging and upload of {data_kind}",
        "Unusual DNS volume from {host} to {domain}",
    ),
    openings=(
        "{netsec} flagged {size_gb} GB sent from {server} to {ip} ({country}) over {hours} hours, "
        "far above its baseline.",
        "{edr} detected rclone.exe on {host} copying files from a network share to a cloud "
        "storage endpoint at {domain}.",
        "{dlp} matched {data_kind} in a 7z archive uploaded from {host} to {domain}.",
    ),
    details=(
        "The archive was password protected and split into 500 MB parts before upload.",
        "The transfer ran outside the business hours of {bu}.",
        "The account used, {user_login}, normally never touches this share.",
        "Files were first staged in C:\\ProgramData\\tmp on {host}.",
        "DNS queries from {host} to long random subdomains of {domain} suggest DNS tunnelling as "
        "a second channel.",
        "The destination belongs to a VPS provider with no business relationship to the company.",
    ),
    findings=(
        "{netsec} alert 'Large upload to uncategorised destination' from {server} at {time_hm}: "
        "{size_gb} GB to {ip}.",
        "{edr} alert on {host}: rclone.exe with a config file pointing to a cloud remote.",
        "{dlp} incident: {n_files} files labelled Confidential in an archive sent to {domain}.",
        "{siem} UEBA anomaly: {user_login} read {n_files} files from the {bu} share in an hour.",
    ),
    summaries=(
        "About {size_gb} GB of {data_kind} left {server} for {ip} ({country}) after being staged "
        "and archived on {host}. The volume, timing and tooling indicate deliberate exfiltration "
        "rather than a backup job.",
        "The account {user_login} was used to collect {n_files} files from the {bu} share and "
        "upload them to {domain}; the data includes {data_kind}.",
    ),
    core=("T1560.001",),
    extra=("T1048.003", "T1567.002", "T1074.001", "T1039", "T1030", "T1071.004"),
    timeline=(
        (-720, "{user_login} began reading files on the {bu} share from {host}"),
        (-400, "Archives staged on {host}"),
        (-300, "Upload to {ip} started"),
        (-20, "Transfer reached {size_gb} GB"),
        (0, "{netsec} alert raised"),
    ),
    recommendations=(
        "Block {ip} and {domain} at the egress firewall.",
        "Disable {user_login} and preserve the account's audit logs.",
        "Isolate {host} and acquire its disk for forensics.",
        "Work out which files left, using {dlp} and share access logs, for the legal assessment.",
        "Restrict rclone and other sync tools with application control.",
        "Add egress volume alerting for servers in {bu}.",
    ),
    assets=("server", "host", "user_email"),
    iocs=((0, 1), (0, 0), (0, 1), (0, 0), (0, 0)),
)

INSIDER_MISUSE = Family(
    key="insider_misuse", category="Insider Threat", weight=4, severity=(1, 20, 52, 27),
    titles=(
        "Departing employee copied {data_kind} to {personal_storage}",
        "Bulk download of CRM records by {user_login}",
        "Access to {bu} files outside job role by {user_login}",
    ),
    openings=(
        "{dlp} reported that {user} ({bu}), who resigned last week, moved {n_files} files to "
        "{personal_storage}.",
        "{user_login} exported {n_records} customer records from the CRM, about {ratio} times "
        "their usual daily volume.",
        "HR asked the SOC to review the activity of {user} after a complaint that confidential "
        "{bu} documents were shared outside the team.",
    ),
    details=(
        "The files include {data_kind} and were renamed to generic names first.",
        "The activity happened on a Saturday evening from {host}.",
        "The user's manager confirms there is no business reason for the access.",
        "The employee's last day is in {n_days} days.",
        "{edr} logged a USB mass storage device mounted on {host} shortly before the copy.",
        "No malware or outside attacker activity was found on {host}.",
    ),
    findings=(
        "{dlp} policy 'Confidential to personal storage' matched {n_files} times for {user_login} "
        "at {time_hm}.",
        "{siem} UEBA: {user_login} downloaded {n_records} CRM records, risk score 92.",
        "{edr} device control event: USB mass storage mounted on {host} at {time_hm}.",
        "SharePoint audit log: {user_login} opened {n_files} files on a {bu} site they never "
        "visited before.",
    ),
    summaries=(
        "{user} used legitimate access to copy {data_kind} to {personal_storage} with no business "
        "reason, shortly before leaving the company. This is likely deliberate insider data theft.",
        "{user_login} accessed and exported far more {bu} data than the role requires; there is no "
        "sign of an outside attacker, so this is handled as insider misuse.",
    ),
    core=("T1213",),
    extra=("T1567.002", "T1052.001", "T1078", "T1213.002"),
    timeline=(
        (-2800, "{user_login} accessed the {bu} site outside normal hours"),
        (-240, "{n_files} files downloaded by {user_login}"),
        (-120, "Files copied to {personal_storage} from {host}"),
        (0, "{dlp} alert escalated to the SOC"),
    ),
    recommendations=(
        "Coordinate with HR and Legal before contacting {user}.",
        "Suspend {user_login}'s access to the {bu} share and the CRM pending review.",
        "Preserve {host} and the account's audit logs under legal hold.",
        "Ask for deletion of the copied data and a signed confirmation.",
        "Block uploads to personal cloud storage for all users through {dlp}.",
        "Review access rights in {bu} for least privilege.",
    ),
    assets=("user_email", "host"),
)

C2_BEACONING = Family(
    key="c2_beaconing", category="Malware / C2", weight=7, severity=(2, 36, 47, 15),
    titles=(
        "{c2} beaconing from {host} to {domain}",
        "Periodic HTTPS callbacks from {host} every {interval} seconds",
        "{malware} infection on {host}",
        "DNS requests to DGA-like domains from {host}",
    ),
    openings=(
        "{netsec} detected {host} connecting to {domain} ({ip}) every {interval} seconds with "
        "small, regular payloads.",
        "{edr} flagged a rundll32.exe process on {host} injecting into explorer.exe and calling "
        "out to {ip}.",
        "Threat intelligence matched {domain}, contacted by {host}, to {malware} infrastructure.",
    ),
    details=(
        "The jitter is under 10 percent, typical of {c2} default profiles.",
        "A scheduled task named 'OneDrive Update' starts the implant at logon.",
        "The callbacks began two days after {user_login} downloaded a fake browser update from "
        "{url}.",
        "The TLS certificate on {ip} is self-signed and reused on {n_hosts} servers in threat "
        "feeds.",
        "No lateral movement from {host} has been seen so far.",
        "A signed binary on {host} loads an unsigned DLL from the user's AppData folder.",
    ),
    findings=(
        "{netsec} alert 'Beaconing behaviour' for {host} at {time_hm}: {n_conn} connections to "
        "{ip} in 24 hours.",
        "{edr} alert 'Process injection' on {host}: rundll32.exe into explorer.exe.",
        "Threat intel match: {domain} listed as {malware} C2 in a vendor feed this week.",
        "DNS logs: {host} resolved {n_conn} unique subdomains of {domain} in one hour.",
    ),
    summaries=(
        "{host} is infected with {malware} and calls back to {domain} ({ip}) every {interval} "
        "seconds, consistent with {c2} command and control. Persistence is a scheduled task.",
        "Regular encrypted callbacks from {host} to {ip} match known {malware} infrastructure; "
        "the host is compromised and the user's credentials are exposed.",
    ),
    core=("T1071.001",),
    extra=("T1573.002", "T1053.005", "T1055", "T1568.002", "T1218.011", "T1105", "T1071.004"),
    timeline=(
        (-2880, "{user_login} downloaded a fake update from {url}"),
        (-2870, "Scheduled task 'OneDrive Update' created on {host}"),
        (-2860, "First connection from {host} to {domain}"),
        (-60, "Beacon interval of {interval} s established"),
        (0, "{netsec} beaconing alert raised"),
    ),
    recommendations=(
        "Isolate {host} with {edr} and capture memory for the implant configuration.",
        "Block {domain} and {ip} on DNS and the firewall.",
        "Reimage {host} after evidence collection and reset {user_login}'s credentials.",
        "Hunt for connections to {ip} and the scheduled task name across the estate.",
        "Detonate the sample in the sandbox to extract further C2 addresses.",
        "Add the hashes to the {edr} block list.",
    ),
    assets=("host", "user_email"),
    iocs=((0, 2), (0, 2), (1, 3), (0, 0), (0, 0)),
    campaign=True,
)

CLOUD_PUBLIC_STORAGE = Family(
    key="cloud_public_storage", category="Cloud Misconfiguration", weight=4,
    severity=(3, 26, 44, 27),
    titles=(
        "Public read access on {cloud_service} {resource} {bucket}",
        "Exposed {resource} {bucket} accessed from the internet",
        "{cloud_detect}: anonymous listing allowed on {bucket}",
    ),
    openings=(
        "{cloud_detect} reported that the {cloud_service} {resource} {bucket} in account "
        "{cloud_account} allows anonymous read and list.",
        "A security researcher wrote to security@example.com that the {resource} {bucket} is "
        "publicly listable and contains {data_kind}.",
        "A posture scan by {cloud_detect} found the {resource} {bucket} with a public access "
        "policy added {n_days} days ago by a deployment pipeline.",
    ),
    details=(
        "Access logs show {n_requests} anonymous GET requests from {ip} and {ip2} over the past "
        "week.",
        "The {resource} holds {n_files} objects, including {data_kind}.",
        "The policy changed when a Terraform module default was updated.",
        "Public access blocking is disabled at the account level for {cloud_account}.",
        "Object versioning is off, so earlier states cannot be compared.",
    ),
    findings=(
        "{cloud_detect} finding 'Storage publicly accessible' for {bucket} at {time_hm}.",
        "Storage access logs: {n_requests} anonymous list and get calls from {ip} ({country}).",
        "Audit log: bucket policy changed by the {iam_role} role {n_days} days ago.",
        "External report to security@example.com at {time_hm} with a screenshot of the listing.",
    ),
    summaries=(
        "The {cloud_service} {resource} {bucket} was publicly readable and holds {data_kind}; "
        "anonymous downloads from {ip} mean the data must be considered exposed. The cause is a "
        "policy change made through the {iam_role} pipeline role.",
        "{bucket} in {cloud_account} was open to anonymous listing for about {n_days} days; the "
        "access logs must be reviewed to scope what was downloaded.",
    ),
    core=("T1530",),
    extra=("T1619", "T1580", "T1537"),
    timeline=(
        (-2800, "Policy on {bucket} changed to allow public read"),
        (-1500, "First anonymous listing from {ip}"),
        (-300, "{n_requests} anonymous GET requests logged"),
        (0, "{cloud_detect} finding raised"),
    ),
    recommendations=(
        "Block public access on {bucket} and at account level for {cloud_account}.",
        "Review the access logs for every anonymous request and list the objects downloaded.",
        "Fix the Terraform module so that the storage policy cannot default to public.",
        "Rotate any credentials or keys stored in the {resource}.",
        "Add an organisation guardrail that denies public storage policies.",
        "Ask the DPO to assess notification duties for the exposed {data_kind}.",
    ),
    assets=("bucket", "cloud_account"),
    iocs=((0, 2), (0, 0), (0, 0), (0, 0), (0, 0)),
)

CLOUD_IAM = Family(
    key="cloud_iam", category="Cloud Misconfiguration", weight=3, severity=(4, 34, 42, 20),
    titles=(
        "Over-permissive IAM role {iam_role} with administrator access",
        "Access key for {iam_role} exposed in a public repository",
        "Dormant access key of {iam_role} used from {ip}",
    ),
    openings=(
        "{cloud_detect} flagged the role {iam_role} in {cloud_account} with a policy granting *:* "
        "and a trust policy open to any principal in the organisation.",
        "Secret scanning reported an access key of {iam_role} committed to a public fork of "
        "{repo}.",
        "An access key of {iam_role}, unused for {n_days} days, made API calls from {ip} "
        "({country}).",
    ),
    details=(
        "The calls included ListBuckets, GetCallerIdentity and DescribeInstances, typical of "
        "automated discovery.",
        "The key was committed {n_days} days ago and is still active.",
        "The role is used by the CI pipeline of {repo} but only needs to write to one bucket.",
        "An attempt to create a new IAM user was denied by a service control policy.",
    ),
    findings=(
        "{cloud_detect} finding at {time_hm}: role {iam_role} has administrative permissions.",
        "CloudTrail: GetCallerIdentity from {ip} ({country}) with the key of {iam_role} at "
        "{time_hm}.",
        "Secret scanning alert for {repo}: access key ID in config/settings.yaml.",
    ),
    summaries=(
        "The role {iam_role} in {cloud_account} has far broader permissions than it needs, and its "
        "access key was used from {ip} for discovery calls. Treat the key as compromised.",
        "An exposed access key for {iam_role} gave an outside party administrative reach into "
        "{cloud_account}; the calls seen so far are reconnaissance.",
    ),
    core=("T1078.004",),
    extra=("T1552.001", "T1580", "T1098.001", "T1526"),
    timeline=(
        (-2800, "Access key committed to a public fork of {repo}"),
        (-200, "GetCallerIdentity from {ip} with the key"),
        (-180, "ListBuckets and DescribeInstances calls from {ip}"),
        (-170, "CreateUser attempt denied by policy"),
        (0, "{cloud_detect} finding raised"),
    ),
    recommendations=(
        "Deactivate and delete the exposed access key of {iam_role} now.",
        "Replace the role policy with a least-privilege policy scoped to the pipeline's bucket.",
        "Review CloudTrail for every call made with the key since it was committed.",
        "Move CI to short-lived OIDC federation instead of long-lived keys.",
        "Remove the secret from the history of {repo} and enable push protection.",
        "Block {ip} in the network ACLs.",
    ),
    assets=("iam_role", "cloud_account", "repo"),
    iocs=((0, 1), (0, 0), (0, 0), (0, 0), (0, 0)),
)

WEB_SQLI = Family(
    key="web_sqli", category="Web Application Attack", weight=4, severity=(2, 28, 45, 25),
    titles=(
        "SQL injection attempts against {webapp_host}",
        "Possible database dump via SQL injection on the {webapp}",
        "WAF alerts for UNION-based SQL injection from {ip}",
    ),
    openings=(
        "The WAF in front of the {webapp} ({webapp_host}) logged {n_requests} requests from {ip} "
        "with SQL injection payloads.",
        "{siem} correlated WAF blocks with unusually large responses from {webapp_host}, which "
        "suggests some injection attempts got through.",
        "A scanner at {ip} ({country}) worked through the {webapp} with sqlmap-style payloads for "
        "{minutes} minutes.",
    ),
    details=(
        "Time-based payloads returned after exactly five seconds, which shows a blind injection "
        "point.",
        "One response was {size_mb} MB, far above normal.",
        "The vulnerable parameter is passed unsanitised to a legacy stored procedure.",
        "The user agent identifies as sqlmap/1.8.",
        "Database audit logs show SELECT statements on the customers table from the web service "
        "account.",
    ),
    findings=(
        "WAF alert 'SQL Injection Attack Detected' for {webapp_host} at {time_hm}: {n_requests} "
        "requests from {ip}.",
        "{siem} correlation: WAF block plus HTTP 200 with a {size_mb} MB response to {ip}.",
        "Database activity monitoring: the web service account ran information_schema queries "
        "at {time_hm}.",
    ),
    summaries=(
        "{ip} ran an automated SQL injection attack against {webapp_host}, and a blind injection "
        "point appears to have been exploited. Customer data may have been read.",
        "SQL injection against the {webapp} from {ip} ({country}) was mostly blocked by the WAF, "
        "but large responses suggest partial data extraction.",
    ),
    core=("T1190",),
    extra=("T1595.002", "T1213", "T1505.003"),
    timeline=(
        (-90, "Crawling of {webapp_host} from {ip} began"),
        (-60, "First SQL injection payloads sent"),
        (-35, "Time-based payload confirmed the injection point"),
        (-20, "Response of {size_mb} MB returned to {ip}"),
        (0, "{siem} correlation alert raised"),
    ),
    recommendations=(
        "Block {ip} at the WAF and CDN.",
        "Fix the injectable parameter with parameterised queries and redeploy the {webapp}.",
        "Review database audit logs to find which tables and rows were read.",
        "Rotate the database credentials of the web service account.",
        "Switch the WAF SQL injection rules from detect to block for {webapp_host}.",
        "Ask the DPO to assess whether customer data was exposed.",
    ),
    assets=("webapp_host",),
    iocs=((0, 2), (0, 0), (0, 0), (0, 1), (0, 0)),
    url_slot="attack_url", campaign=True,
)

EDGE_EXPLOIT = Family(
    key="edge_exploit", category="Exploitation of Public-Facing Application", weight=3,
    severity=(12, 48, 30, 10),
    titles=(
        "Exploitation of {cve} on {vuln_product} ({vuln_host})",
        "Web shell found on {vuln_host} after {cve} exploitation",
        "Requests matching the {cve} exploit against {vuln_host}",
    ),
    openings=(
        "{netsec} matched requests from {ip} against {vuln_host} to the public exploit for {cve}, "
        "a {vuln_kind} in {vuln_product}.",
        "The integrity checker of {vuln_product} ({vuln_host}) reported new files in the web "
        "directory, days after {cve} was published.",
        "Threat intelligence warned that {cve} in {vuln_product} is mass exploited; log review "
        "shows hits against {vuln_host} from {ip}.",
    ),
    details=(
        "The server was still on a version without the vendor's mitigation.",
        "A web shell was dropped and used to run id and whoami.",
        "Outbound connections from the server to {ip2} started shortly after the exploit.",
        "The server holds session tokens that can be replayed, so active sessions may be "
        "hijacked.",
        "The attacker read the server configuration, which includes LDAP bind credentials.",
        "No follow-on activity inside the network has been found yet.",
    ),
    findings=(
        "IPS signature for {cve} matched {n_requests} requests from {ip} to {vuln_host} at "
        "{time_hm}.",
        "Integrity check on {vuln_host}: {n_files} new or modified files.",
        "{siem}: {vuln_host} connected to {ip2} ({country}) at {time_hm}, never seen before.",
    ),
    summaries=(
        "{vuln_host} ({vuln_product}) was exploited through {cve}, a {vuln_kind}, from {ip}; the "
        "attacker planted a web shell and the server connected to {ip2}. Treat the server "
        "and every credential it stores as compromised.",
        "Exploit attempts for {cve} against {vuln_host} came from {ip}, and the integrity check "
        "shows changed files, so exploitation likely succeeded.",
    ),
    core=("T1190",),
    extra=("T1505.003", "T1059.004", "T1552.001", "T1556", "T1133", "T1595.002"),
    timeline=(
        (-1500, "Scanning of {vuln_host} from {ip}"),
        (-900, "Exploit requests for {cve} succeeded"),
        (-880, "Web shell written to the server's web directory"),
        (-600, "Outbound connection from {vuln_host} to {ip2}"),
        (0, "Integrity check alert raised"),
    ),
    recommendations=(
        "Disconnect {vuln_host} from the internet and follow the vendor's guidance for {cve}.",
        "Patch and rebuild the server from a clean image before reconnecting it.",
        "Rotate every credential stored on the server, including LDAP bind and local admin.",
        "Revoke all active VPN sessions and force re-authentication.",
        "Block {ip} and {ip2} at the perimeter.",
        "Hunt for logins from the server's internal address since the exploitation.",
    ),
    assets=("vuln_host",),
    iocs=((0, 2), (0, 1), (1, 2), (0, 0), (0, 0)),
    campaign=True,
)

DDOS = Family(
    key="ddos", category="Denial of Service", weight=3, severity=(4, 30, 46, 20),
    titles=(
        "Volumetric DDoS against {webapp_host} ({gbps} Gbps peak)",
        "HTTP flood on the {webapp} from a botnet",
        "DDoS with extortion e-mail against {webapp_host}",
    ),
    openings=(
        "{ddos_provider} mitigated a {gbps} Gbps flood against {webapp_host} lasting {minutes} "
        "minutes.",
        "The {webapp} ({webapp_host}) returned 503 errors while receiving {n_rps} HTTP requests "
        "per second from {n_ips} addresses.",
    ),
    details=(
        "Most traffic came from compromised IoT devices, judging by source ports and TTLs.",
        "The attack coincided with an e-mail demanding payment to stop a larger attack.",
        "Autoscaling absorbed part of the load but the database connection pool was exhausted.",
        "Customers saw about {minutes_down} minutes of downtime.",
        "The top source, {ip}, sent {pct} percent of the requests.",
    ),
    findings=(
        "{ddos_provider} alert 'DDoS attack mitigated' for {webapp_host} at {time_hm}: peak "
        "{gbps} Gbps.",
        "Uptime monitoring: {webapp_host} failed health checks from {time_hm} for {minutes_down} "
        "minutes.",
        "Load balancer logs: {n_rps} requests per second to /login, top sources {ip} and {ip2}.",
    ),
    summaries=(
        "{webapp_host} was hit by a DDoS attack peaking at {gbps} Gbps from a botnet that includes "
        "{ip} and {ip2}; {ddos_provider} absorbed most of it but service was degraded for "
        "{minutes_down} minutes.",
        "An HTTP flood from {n_ips} sources exhausted the {webapp}'s backend capacity, a pattern "
        "typical of a rented botnet. No intrusion is linked to the attack.",
    ),
    core=("T1498.001",),
    extra=("T1498.002", "T1499.002", "T1499.003"),
    timeline=(
        (-60, "Traffic to {webapp_host} rose above baseline"),
        (-45, "Peak of {gbps} Gbps reached"),
        (-40, "{ddos_provider} mitigation engaged"),
        (-10, "Latency back to normal"),
        (0, "Incident opened for post-attack review"),
    ),
    recommendations=(
        "Keep the {ddos_provider} always-on mitigation profile for {webapp_host}.",
        "Add per-client rate limiting on /login and the search API.",
        "Block {ip} and {ip2} temporarily and share the source list with the ISP.",
        "Do not answer or pay the extortion e-mail; report it to law enforcement.",
        "Make sure the origin is reachable only through the CDN.",
        "Run a DDoS tabletop with the hosting provider to confirm escalation contacts.",
    ),
    assets=("webapp_host",),
    iocs=((4, 10), (0, 0), (0, 0), (0, 0), (0, 0)),
    storm_chance=0.2, campaign=True,
)

LOST_DEVICE = Family(
    key="lost_device", category="Lost or Stolen Device", weight=6, severity=(0.3, 7, 40, 52.7),
    titles=(
        "Lost {device} reported by {user_login}",
        "Stolen {device} of an employee in {bu}",
        "Device {laptop} reported stolen {loss_place}",
    ),
    openings=(
        "{user} ({bu}) reported that their {device} ({laptop}) was stolen {loss_place}.",
        "{user_login} told the service desk they lost their {device} {loss_place} and noticed "
        "{hours} hours later.",
    ),
    details=(
        "The device is enrolled in Intune and disk encryption is confirmed as enabled.",
        "The device last checked in {hours} hours ago.",
        "The user kept a local copy of {data_kind} in the Downloads folder.",
        "A remote wipe was sent and is pending until the device comes online.",
        "No sign-ins from the device have been seen since the loss.",
    ),
    findings=(
        "Service desk ticket at {time_hm}: {user_login} reports a lost {device}.",
        "Intune shows {laptop} compliant and encrypted, last check-in {hours} hours ago.",
        "{idp} shows no sign-in from {laptop} since the reported loss.",
    ),
    summaries=(
        "{user}'s {device} ({laptop}) was lost {loss_place}. Disk encryption is enabled, so "
        "exposure is unlikely if the device was locked, but sessions should still be revoked.",
        "A {device} assigned to {user_login} is missing and may hold {data_kind}; the risk depends "
        "on encryption, which Intune reports as active.",
    ),
    core=(),
    extra=("T1005",),
    timeline=(
        (-600, "{laptop} last check-in to Intune"),
        (-300, "Device lost {loss_place}"),
        (-30, "{user_login} reported the loss to the service desk"),
        (0, "Remote wipe issued and case opened"),
    ),
    recommendations=(
        "Issue a remote wipe of {laptop} and confirm completion when it checks in.",
        "Revoke {user_login}'s sessions and refresh tokens and reset the password.",
        "Remove {laptop} from the trusted devices after the wipe.",
        "Confirm the disk encryption recovery key was not stored with the device.",
        "Ask the user for the police report reference and attach it to the case.",
        "Check whether the local copy of {data_kind} triggers a notification duty.",
    ),
    assets=("laptop", "user_email"),
)

MISDELIVERY = Family(
    key="misdelivery", category="Misdelivery", weight=5, severity=(0, 6, 40, 54),
    titles=(
        "E-mail with {data_kind} sent to the wrong external recipient",
        "Misdirected e-mail from {bu} to {recipient_email}",
        "Autocomplete error exposed {data_kind}",
    ),
    openings=(
        "{user} from {bu} sent an e-mail with {data_kind} to {recipient_email} instead of a "
        "colleague with a similar name.",
        "{user_login} attached the wrong file, containing {data_kind}, to a message for an "
        "external customer at {recipient_email}.",
    ),
    details=(
        "Outlook autocomplete picked the wrong address.",
        "The recipient has confirmed by e-mail that they deleted the message.",
        "The attachment was not password protected.",
        "Message recall failed because the recipient is outside the organisation.",
        "The file lists {n_records} people with names, addresses and account numbers.",
    ),
    findings=(
        "{dlp} policy tip overridden by {user_login} at {time_hm} with justification 'business "
        "need'.",
        "Message trace: {user_email} to {recipient_email} at {time_hm}, one attachment.",
        "Self-report by {user_login} to the privacy team at {time_hm}.",
    ),
    summaries=(
        "{user_login} sent {data_kind} to the wrong external address, {recipient_email}. This is "
        "an accidental disclosure, not an attack.",
        "Personal data about {n_records} people went to an unintended recipient through an "
        "autocomplete error; containment depends on the recipient's confirmed deletion.",
    ),
    core=(),
    extra=(),
    timeline=(
        (-120, "E-mail sent from {user_email} to {recipient_email}"),
        (-100, "{user_login} noticed the wrong recipient"),
        (-90, "Message recall attempted and failed"),
        (0, "Incident logged by the privacy team"),
    ),
    recommendations=(
        "Ask {recipient_email} to delete the message and confirm deletion in writing.",
        "Record the incident in the breach register; the DPO decides on notification within 72 "
        "hours.",
        "Turn on the external-recipient warning in Outlook for {bu}.",
        "Remove the wrong address from {user_login}'s autocomplete list.",
        "Require sensitivity labels and encryption for files with personal data.",
    ),
    assets=("user_email",),
)

SUPPLY_CHAIN = Family(
    key="supply_chain", category="Supply Chain Compromise", weight=2, severity=(8, 42, 38, 12),
    titles=(
        "Malicious package {package} installed in the {repo} build",
        "Typosquatted {registry} dependency {package} in {repo}",
        "Dependency confusion: {package} pulled from {registry}",
    ),
    openings=(
        "The CI pipeline of {repo} installed {package} from {registry}; its install script "
        "contacts {domain}.",
        "{edr} on build agent {server} caught a process reading cloud credential files during "
        "the {repo} build.",
        "A developer noticed that the {repo} lock file pulled {package}, a name one letter away "
        "from a popular library.",
    ),
    details=(
        "The package was published {n_days} days ago and has {n_downloads} downloads.",
        "The install script collects environment variables and sends them to {url}.",
        "The build agent had production deployment credentials in its environment.",
        "{registry} has since removed the package, but it was cached in the internal mirror.",
        "Only builds of {repo} from the last {n_days} days are affected.",
    ),
    findings=(
        "{edr} alert on {server} at {time_hm}: credential file access during package install.",
        "Proxy: {server} posted data to {url} at {time_hm}.",
        "Software composition analysis flagged {package} as malicious ({registry} advisory).",
    ),
    summaries=(
        "A malicious {registry} package, {package}, entered the {repo} build and sent environment "
        "variables from {server} to {domain}. Every secret available to the pipeline must be "
        "treated as stolen.",
        "{repo} depended on the lookalike package {package}, whose install script contacted "
        "{domain}, so the build agent {server} is compromised.",
    ),
    core=("T1195.001",),
    extra=("T1059.006", "T1059.007", "T1552.001", "T1041"),
    timeline=(
        (-2800, "{package} published on {registry}"),
        (-1400, "The {repo} build installed {package}"),
        (-1399, "Install script posted environment data to {domain}"),
        (-30, "Software composition analysis flagged the package"),
        (0, "Case opened; builds paused"),
    ),
    recommendations=(
        "Remove {package} from {repo}, pin dependencies with hashes and rebuild on a clean agent.",
        "Rotate every secret exposed to the {repo} pipeline, production deployment keys first.",
        "Purge {package} from the internal package mirror.",
        "Block {domain} and review all egress from build agents.",
        "Reserve internal package names on {registry} to prevent dependency confusion.",
        "Rebuild {server} from a known-good image.",
    ),
    assets=("repo", "server"),
    iocs=((0, 1), (0, 1), (1, 2), (0, 0), (0, 0)),
    campaign=True,
)

ACCOUNT_TAKEOVER = Family(
    key="account_takeover", category="Account Takeover", weight=6, severity=(1, 30, 47, 22),
    titles=(
        "MFA fatigue: {user_login} approved an unexpected push",
        "Session hijack of {user_email} from {country}",
        "New MFA device registered for {user_login} from {ip}",
    ),
    openings=(
        "{user_login} received {n_push} MFA push requests within {minutes} minutes and approved "
        "one, after which {ip} ({country}) signed in.",
        "{idp} shows {user_email} signing in from {ip} ({country}) with a session token issued to "
        "the user's laptop an hour earlier.",
        "A new authenticator app was registered for {user} ({bu}) from {ip}, followed by sign-ins "
        "to e-mail and SharePoint.",
    ),
    details=(
        "The attacker opened the mailbox in Outlook on the web and searched for 'invoice', "
        "'password' and 'VPN'.",
        "The user says they approved the prompt thinking it was a glitch.",
        "The session cookie was probably stolen by an infostealer; {edr} removed {malware} from "
        "{host} last week.",
        "An OAuth application named 'Mail Sync' was granted Mail.Read by the account.",
        "Conditional access did not apply because the sign-in came from a registered device.",
    ),
    findings=(
        "{idp} alert 'MFA push fatigue' for {user_login} at {time_hm}: {n_push} denied pushes "
        "then one approval.",
        "{idp} risk detection 'anomalous token' for {user_email} from {ip}.",
        "Audit log: authenticator added for {user_login} from {ip} ({country}) at {time_hm}.",
    ),
    summaries=(
        "{user_email} was taken over: the attacker got a valid session from {ip} ({country}) and "
        "read the mailbox. The pattern points to MFA fatigue or a stolen session cookie rather "
        "than password guessing.",
        "{user_login}'s account is compromised; a rogue MFA method and sign-ins from {ip} give the "
        "attacker lasting access until they are removed.",
    ),
    core=("T1078.004",),
    extra=("T1621", "T1539", "T1098.005", "T1114.002", "T1528"),
    timeline=(
        (-180, "Password sign-in for {user_email} from {ip}"),
        (-175, "{n_push} MFA pushes sent to {user_login}"),
        (-160, "Push approved; session issued to {ip}"),
        (-140, "Mailbox searched through Outlook on the web"),
        (0, "{idp} alert raised"),
    ),
    recommendations=(
        "Revoke all sessions and refresh tokens for {user_email} and reset the password.",
        "Remove the MFA methods and OAuth grants added during the incident.",
        "Enable number matching for push MFA in {idp}.",
        "Block {ip} and review sign-ins from it across all accounts.",
        "Review what the attacker read or sent from the mailbox and warn contacts if needed.",
        "Scan {host} for infostealers before the user signs in again.",
    ),
    assets=("user_email", "host"),
    iocs=((0, 2), (0, 0), (0, 0), (0, 0), (0, 0)),
    campaign=True,
)

CRYPTOJACKING = Family(
    key="cryptojacking", category="Resource Hijacking", weight=2, severity=(0.5, 18, 50, 31.5),
    titles=(
        "Cryptominer running on {server}",
        "XMRig process and mining pool traffic from {server}",
        "Coin miner deployed through exposed Docker API on {server}",
    ),
    openings=(
        "{edr} flagged an xmrig process on {server} using all CPU cores and connecting to a "
        "mining pool at {domain}.",
        "{netsec} detected Stratum protocol traffic from {server} to {ip}:{port}.",
    ),
    details=(
        "The miner was deployed through a Docker API exposed on port 2375.",
        "A cron job downloads the miner again from {url} every ten minutes.",
        "The server's CPU has been at 98 percent for {hours} hours.",
        "The container image was pulled from a public registry account created {n_days} days ago.",
    ),
    findings=(
        "{edr} alert 'Coin miner' on {server} at {time_hm}: process xmrig, CPU 98 percent.",
        "DNS: {server} resolved {domain}, a known mining pool, at {time_hm}.",
        "{netsec}: Stratum traffic from {server} to {ip}:{port}.",
    ),
    summaries=(
        "{server} runs an XMRig cryptominer that reaches {domain} ({ip}); it was installed through "
        "an exposed Docker API and persists through cron. The impact is mostly cost and "
        "performance, but the entry point means the host is compromised.",
        "An attacker deployed a coin miner on {server} that mines through {domain}; the exposed "
        "service that let them in must be closed.",
    ),
    core=("T1496",),
    extra=("T1053.003", "T1610", "T1105", "T1190"),
    timeline=(
        (-1400, "Docker API on {server} reached from {ip}"),
        (-1390, "Container with xmrig started"),
        (-1380, "Cron job for miner persistence created"),
        (-60, "CPU usage alert on {server}"),
        (0, "{edr} coin miner alert raised"),
    ),
    recommendations=(
        "Kill the miner, remove the cron job and rebuild {server}.",
        "Close the Docker API port and require TLS client authentication.",
        "Block {domain} and {ip} and mining protocols at egress.",
        "Check other hosts for port 2375 exposed to the internet.",
        "Set CPU anomaly alerting for the server fleet.",
    ),
    assets=("server",),
    iocs=((0, 1), (0, 1), (1, 2), (0, 0), (0, 0)),
    campaign=True,
)

FAMILIES = (
    PHISHING_ATTACHMENT, PHISHING_CREDENTIAL, PHISHING_REPORTED, BEC, RANSOMWARE_FAMILY,
    PASSWORD_SPRAYING, CREDENTIAL_STUFFING, DATA_EXFILTRATION, INSIDER_MISUSE, C2_BEACONING,
    CLOUD_PUBLIC_STORAGE, CLOUD_IAM, WEB_SQLI, EDGE_EXPLOIT, DDOS, LOST_DEVICE, MISDELIVERY,
    SUPPLY_CHAIN, ACCOUNT_TAKEOVER, CRYPTOJACKING,
)
