"""Incoming HTML: hostile markup is removed, ordinary formatting survives, remote images hide."""
import pytest

from app.mail.sanitize import clean_html, html_to_text, without_remote_images

HOSTILE = {
    "script element": ('<p>hi</p><script>alert(1)</script>', ["<script", "alert"]),
    "script in upper case": ('<SCRIPT SRC="http://evil.example/x.js"></SCRIPT>hi', ["script", "evil"]),
    "onerror handler": ('<img src="https://ok.example/a.png" onerror="alert(1)">', ["onerror", "alert"]),
    "onclick handler": ('<a href="https://ok.example/" onclick="steal()">x</a>', ["onclick", "steal"]),
    "onload on body": ('<body onload="alert(1)"><p>x</p></body>', ["onload", "alert"]),
    "javascript: link": ('<a href="javascript:alert(1)">x</a>', ["javascript", "alert"]),
    "javascript: link with spaces and case": ('<a href=" JaVaScRiPt:alert(1)">x</a>', ["javascript", "alert"]),
    "javascript: entity-encoded": ('<a href="&#106;avascript:alert(1)">x</a>', ["avascript", "alert"]),
    "vbscript: link": ('<a href="vbscript:msgbox(1)">x</a>', ["vbscript", "msgbox"]),
    "data: link": ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', ["data:", "base64"]),
    "form with input and button": ('<form action="https://evil.example/"><input name="pw"><button>Go</button></form>',
                                   ["<form", "<input", "<button", "evil.example"]),
    "iframe": ('<iframe src="https://evil.example/"></iframe>', ["<iframe", "evil.example"]),
    "object and embed": ('<object data="x.swf"></object><embed src="x.swf">', ["<object", "<embed", "swf"]),
    "hx-get": ('<div hx-get="/admin/agents" hx-trigger="load">x</div>', ["hx-", "/admin"]),
    "data-hx-get": ('<div data-hx-get="/logout" data-hx-trigger="load">x</div>', ["hx-", "/logout"]),
    "hx-post with hx-vals": ('<button hx-post="/tickets/1/close" hx-vals=\'{"a":1}\'>x</button>', ["hx-", "/tickets"]),
    "any data-* attribute": ('<p data-x="1" data-action="go">x</p>', ["data-"]),
    "id and class": ('<div id="queue" class="btn danger">x</div>', ["id=", "class=", "queue"]),
    "position fixed over the page": ('<div style="position:fixed;top:0;left:0;z-index:9999">x</div>',
                                     ["position", "fixed", "top", "z-index"]),
    "transform": ('<div style="transform:scale(10)">x</div>', ["transform"]),
    "background url()": ('<div style="background:url(https://track.example/p.gif)">x</div>', ["url(", "track"]),
    "url() inside an allowed property": ('<div style="border: url(https://t.example/x)">x</div>', ["url(", "t.example"]),
    "expression()": ('<div style="width: expression(alert(1))">x</div>', ["expression", "alert"]),
    "behavior": ('<div style="behavior: url(x.htc)">x</div>', ["behavior", "htc"]),
    "css escapes": ('<div style="color: \\72 ed; width: ex\\70 ression(1)">x</div>', ["\\", "ression"]),
    "negative margin": ('<div style="margin-top:-500px">x</div>', ["-500"]),
    "base element": ('<base href="https://evil.example/"><a href="https://ok.example/">x</a>', ["<base", "evil"]),
    "meta refresh": ('<meta http-equiv="refresh" content="0;url=https://evil.example/">x', ["<meta", "refresh", "evil"]),
    "link stylesheet": ('<link rel="stylesheet" href="https://evil.example/x.css">x', ["<link", "evil"]),
    "style element": ('<style>body{display:none}</style><p>x</p>', ["<style", "display"]),
    "svg with script": ('<svg onload="alert(1)"><script>alert(2)</script><circle r="5"/></svg>x',
                        ["<svg", "<script", "alert", "circle"]),
    "svg image as data url": ('<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">', ["svg", "data:"]),
    "math": ('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', ["<math", "javascript"]),
    "relative link into the helpdesk": ('<a href="/admin/brands">x</a><img src="/logout">', ["/admin", "/logout"]),
    "protocol-relative image": ('<img src="//evil.example/p.gif">', ["evil.example"]),
    "srcset": ('<img src="cid:a@b" srcset="https://track.example/x 2x">', ["srcset", "track"]),
    "comment tricks": ('<!--[if IE]><script>alert(1)</script><![endif]--><p>x</p>', ["<!--", "script", "alert"]),
    "textarea breaking out": ('<textarea></textarea><img src=x onerror=alert(1)></textarea>', ["onerror", "alert"]),
    "template": ('<template><img src=x onerror=alert(1)></template>x', ["onerror", "alert", "<template"]),
    "noscript": ('<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>', ["onerror", "alert"]),
}


@pytest.mark.parametrize("case", HOSTILE.keys())
def test_hostile_html_is_removed(case):
    html, forbidden = HOSTILE[case]
    cleaned = clean_html(html).lower()
    for text in forbidden:
        assert text.lower() not in cleaned, f"{case}: {text!r} survived in {cleaned!r}"


def test_ordinary_formatting_survives():
    html = ('<p>Hello <b>bold</b> <i>italic</i> <u>under</u> <strong>s</strong> <em>e</em></p>'
            '<a href="https://example.com/a?b=1">link</a> <a href="mailto:help@example.com">mail</a>'
            '<ul><li>one</li><li>two</li></ul><ol start="3"><li>three</li></ol>'
            '<table border="1" cellpadding="4"><thead><tr><th>Item</th></tr></thead>'
            '<tbody><tr><td colspan="2" align="right">Lamp</td></tr></tbody></table>'
            '<img src="cid:logo@example" alt="Logo" width="80" height="20">'
            '<blockquote type="cite">quoted</blockquote><pre>  code</pre><br><hr>'
            '<font color="#336699" face="Arial">old style</font><h2>Title</h2>')
    cleaned = clean_html(html)
    for kept in ("<b>bold</b>", "<i>italic</i>", "<u>under</u>", "<strong>s</strong>", "<em>e</em>",
                 'href="https://example.com/a?b=1"', 'href="mailto:help@example.com"',
                 "<ul><li>one</li><li>two</li></ul>", '<ol start="3">', "<th>Item</th>",
                 'colspan="2"', 'align="right"', 'border="1"', 'cellpadding="4"',
                 'src="cid:logo@example"', 'alt="Logo"', 'width="80"', "<blockquote", "<pre>  code</pre>",
                 "<br>", "<hr>", 'color="#336699"', "<h2>Title</h2>"):
        assert kept in cleaned, kept


def test_links_open_in_a_new_tab_without_referrer_or_opener():
    cleaned = clean_html('<a href="https://example.com/">x</a>')
    assert 'target="_blank"' in cleaned
    assert 'rel="noopener noreferrer nofollow"' in cleaned


def test_safe_css_is_kept_and_the_rest_of_the_declaration_dropped():
    cleaned = clean_html('<p style="color: #c00; font-weight: bold; position: absolute; top: 3px; '
                         'margin: 4px 8px; padding-left: 2em; text-align: center; border: 1px solid #ccc; '
                         'background-color: #eee; width: 100px; background-image: url(x.png)">x</p>')
    for kept in ("color:#c00", "font-weight:bold", "margin:4px 8px", "padding-left:2em",
                 "text-align:center", "border:1px solid #ccc", "background-color:#eee", "width:100px"):
        assert kept in cleaned.replace("; ", ";"), kept
    for dropped in ("position", "top", "url(", "background-image"):
        assert dropped not in cleaned


def test_small_data_images_of_raster_types_are_kept():
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    assert png in clean_html(f'<img src="{png}">')
    huge = "data:image/png;base64," + "A" * 300_000
    assert "data:" not in clean_html(f'<img src="{huge}">')


def test_a_full_document_becomes_a_fragment_of_its_body():
    cleaned = clean_html("<!DOCTYPE html><html><head><title>Secret title</title></head>"
                         "<body><p>Body text</p></body></html>")
    assert cleaned == "<p>Body text</p>"


def test_without_remote_images_hides_http_images_and_counts_them():
    cleaned = clean_html('<p>Hi</p><img src="https://track.example/open.gif" alt="">'
                         '<img src="http://cdn.example/logo.png" alt="Shop logo">'
                         '<img src="cid:inline@x" alt="inline">')
    hidden, count = without_remote_images(cleaned)
    assert count == 2
    assert "track.example" not in hidden and "cdn.example" not in hidden
    assert 'alt="Shop logo"' in hidden
    assert 'src="cid:inline@x"' in hidden
    assert "<p>Hi</p>" in hidden


def test_without_remote_images_changes_nothing_when_there_are_none():
    cleaned = clean_html('<p>Hi <img src="cid:a@b" alt="a"></p>')
    assert without_remote_images(cleaned) == (cleaned, 0)
    assert without_remote_images("") == ("", 0)


def test_empty_html_stays_empty():
    assert clean_html("") == ""


def test_html_to_text_reads_blocks_lists_tables_links_and_quotes():
    text = html_to_text(clean_html(
        "<div>Hello</div><div><br></div><div>Items:</div><ul><li>lamp</li><li>chair</li></ul>"
        "<table><tr><td>Order</td><td>42</td></tr></table>"
        '<p>See <a href="https://example.com/track">tracking</a>.</p>'
        "<blockquote>old<br>older</blockquote><p>&lt;not a tag&gt; &amp; more</p>"))
    assert text == ("Hello\n\nItems:\n\n- lamp\n- chair\n\nOrder 42\n\n"
                    "See tracking <https://example.com/track>.\n\n> old\n> older\n\n<not a tag> & more")


def test_html_to_text_keeps_preformatted_text():
    assert html_to_text("<pre>  a\n    b</pre>") == "a\n    b"
