"""Brands: their support address, signature, outgoing mail server and chat widget settings;
and the test email."""
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from app import events
from app.db import transaction
from app.mail import addresses, smtp
from app.models import Brand
from app.models.brands import SMTP_SECURITY
from app.numbers import whole_number
from app.services import directory, hours

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
FIELDS = ("name", "address", "signature", "smtp_host", "smtp_port", "smtp_security",
          "smtp_username", "ack_enabled", "ack_template", "response_time",
          "allowed_origins", "widget_color", "business_hours", "timezone")
_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_COLOR = re.compile(r"^#(?:[0-9a-f]{3}|[0-9a-f]{6})$")


class BrandError(ValueError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def clean(values: dict) -> dict:
    """Check and normalize brand settings; raises BrandError naming the field."""
    cleaned = {}
    name = (values.get("name") or "").strip()
    if not name:
        raise BrandError("Please give the brand a name.", "name")
    cleaned["name"] = name[:200]
    try:
        cleaned["address"] = addresses.normalize(values.get("address") or "")
    except addresses.InvalidAddress as exc:
        raise BrandError(f"The support address is not valid: {exc}", "address") from None
    cleaned["signature"] = (values.get("signature") or "").strip()[:2000]
    cleaned["smtp_host"] = (values.get("smtp_host") or "").strip()
    if re.search(r"[\s/]", cleaned["smtp_host"]):
        raise BrandError("The SMTP host is a name like smtp.example.com, without spaces.", "smtp_host")
    port = values.get("smtp_port")
    port = 587 if port in (None, "") else whole_number(str(port).strip())  # 0 is no default
    if port is None or not 0 < port < 65536:
        raise BrandError("The SMTP port is a number from 1 to 65535.", "smtp_port")
    cleaned["smtp_port"] = port
    security = (values.get("smtp_security") or "starttls").strip().lower()
    if security not in SMTP_SECURITY:
        raise BrandError("The SMTP security is none, starttls or ssl.", "smtp_security")
    cleaned["smtp_security"] = security
    cleaned["smtp_username"] = (values.get("smtp_username") or "").strip()
    cleaned["ack_enabled"] = bool(values.get("ack_enabled", True))
    cleaned["ack_template"] = (values.get("ack_template") or "").strip()[:5000]
    try:
        SandboxedEnvironment().parse(cleaned["ack_template"])
    except TemplateSyntaxError as exc:
        raise BrandError(f"The acknowledgement template has an error on line {exc.lineno}: "
                         f"{exc.message}", "ack_template") from None
    cleaned["response_time"] = (values.get("response_time") or "within one working day").strip()[:200]
    cleaned.update(_clean_widget(values))
    return cleaned


def normalize_origin(raw: str) -> str:
    """An origin as browsers send it in the Origin header: scheme://host[:port], lowercase,
    without a default port or a path."""
    value = raw.strip().lower().rstrip("/")
    match = _ORIGIN.match(value)
    if not match:
        raise BrandError(f"“{raw.strip()}” is not a site origin: write the scheme and the host, "
                         "like https://shop.example (without a path).", "allowed_origins")
    scheme, host, port = match.groups()
    if port and (not 0 < int(port) < 65536):
        raise BrandError(f"“{raw.strip()}” has a port out of range.", "allowed_origins")
    if port and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _clean_widget(values: dict) -> dict:
    origins = []
    for raw in re.split(r"[\s,]+", values.get("allowed_origins") or ""):
        origin = normalize_origin(raw) if raw else ""
        if origin and origin not in origins:
            origins.append(origin)
    color = (values.get("widget_color") or "#2f5fd0").strip().lower()
    if not _COLOR.match(color):
        raise BrandError("The widget colour is a hex colour like #2f5fd0.", "widget_color")
    if len(color) == 4:
        color = "#" + "".join(c * 2 for c in color[1:])
    business_hours = (values.get("business_hours") or "").strip()[:500]
    time_zone = (values.get("timezone") or "UTC").strip()
    try:
        hours.parse(business_hours)
    except hours.HoursError as exc:
        raise BrandError(f"Business hours: {exc}", "business_hours") from None
    try:
        hours.zone(time_zone)
    except hours.HoursError as exc:
        raise BrandError(str(exc), "timezone") from None
    return {"allowed_origins": "\n".join(origins), "widget_color": color,
            "business_hours": business_hours, "timezone": time_zone}


def allowed_origins(brand: Brand) -> list[str]:
    """The sites that may embed this brand's widget (and forms), as Origin header values."""
    return [line.strip() for line in (brand.allowed_origins or "").splitlines() if line.strip()]


def create_brand(slug: str, values: dict, smtp_password: str = "", by=None) -> Brand:
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise BrandError("The short name (slug) uses lowercase letters, digits and dashes, "
                         "like my-store.", "slug")
    if slug == "new":  # /admin/brands/new is the page for a new brand
        raise BrandError("Choose another short name: new is taken.", "slug")
    cleaned = clean(values)
    with transaction():
        if Brand.select().where(Brand.slug == slug).exists():
            raise BrandError(f"A brand with the short name {slug} already exists.", "slug")
        is_first = not Brand.select().exists()
        brand = Brand.create(slug=slug, smtp_password=smtp_password, is_default=is_first, **cleaned)
        events.record("brand.created", agent=by, brand=slug)
    directory.forget()
    return brand


def update_brand(slug: str, values: dict, smtp_password: str | None = None, by=None) -> Brand:
    """Change a brand; a password of None keeps the stored one (it is never shown again)."""
    cleaned = clean(values)
    with transaction():
        brand = get_brand(slug)
        for name, value in cleaned.items():
            setattr(brand, name, value)
        if smtp_password is not None:
            brand.smtp_password = smtp_password
        brand.save()
        events.record("brand.updated", agent=by, brand=slug)
    directory.forget()
    return brand


def get_brand(slug: str) -> Brand:
    brand = Brand.get_or_none(Brand.slug == slug)
    if brand is None:
        raise BrandError(f"There is no brand {slug}.", "slug")
    return brand


def list_brands() -> list[Brand]:
    return list(Brand.select().order_by(Brand.name))


def smtp_server_of(brand: Brand) -> smtp.SmtpServer:
    return smtp.SmtpServer(host=brand.smtp_host, port=brand.smtp_port,
                           security=brand.smtp_security, username=brand.smtp_username,
                           password=brand.smtp_password)


def send_test_email(brand: Brand, to_address: str, timeout: float = 20.0) -> None:
    """Send a short test mail through the brand's server; raises smtp.SendError in words, or
    BrandError for an address that is not one."""
    try:
        to = addresses.normalize(to_address)
    except addresses.InvalidAddress as exc:
        raise BrandError(f"The test address is not valid: {exc}", "to") from None
    mail = EmailMessage()
    user, _, domain = brand.address.partition("@")
    mail["From"] = Address(brand.name, user, domain)
    mail["To"] = to
    mail["Subject"] = f"Test email from {brand.name}"
    mail["Message-ID"] = make_msgid(domain=domain)
    mail.set_content(f"This is a test email from the helpdesk for {brand.name}.\n"
                     "If you can read it, outgoing mail works.\n")
    smtp.send(smtp_server_of(brand), mail, timeout=timeout)
