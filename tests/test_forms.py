"""Contact forms built by admins: the builder, submissions and their checks, the ticket's own
copy of the fields, the queue's filters, and the embed variants."""
import re
import time

import peewee
import pytest

from app import db
from app.intake import receive
from app.models import Attachment, Form, Message, Ticket, TicketField, database
from app.security import RateLimits
from app.services import brands as brand_service
from app.services import forms, queue
from tests.helpers import post_form

MAX_FILE_BYTES = 2000


@pytest.fixture
def settings(settings):
    # Small files are enough to meet the limits.
    return settings.with_changes(form_max_file_bytes=MAX_FILE_BYTES, form_max_files=2)


def field(kind, label, required=False, **extra):
    return {**forms.blank_field(kind), "label": label, "required": required, **extra}


RETURNS_FIELDS = [
    field("choice", "Topic", True, options=["Refund", "Exchange", "Damaged item"]),
    field("order", "Order number", True, pattern="digits"),
    field("checkbox", "I still have the original packaging"),
    field("file", "Photos"),
]


def make_form(brand, fields=None, **values) -> Form:
    return forms.save_form(None, brand.id, {"name": "Returns", "active": True, **values},
                           RETURNS_FIELDS if fields is None else fields)


VALID = {"name": "Maria Lopez", "email": "maria@example.org", "field-topic": "Refund",
         "field-order_number": "5521", "field-i_still_have_the_original": "yes",
         "message": "The tent has a hole."}


def send(client, form, data, files=None, started_ago=10.0, embed=False, token=None):
    """Post the form as a visitor whose page was served started_ago seconds ago."""
    path = f"/forms/{form.brand.slug}/{form.slug}" + ("/embed" if embed else "")
    page = client.get(path).text
    submission_id = re.search(r'name="submission_id" value="([0-9a-f]+)"', page).group(1)
    token = token or forms.start_token("test-secret-key", form.id, time.time() - started_ago)
    return client.post(path, data={"submission_id": submission_id, "started": token, **data},
                       files=files)


def reference(response) -> int:
    return int(re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1))


# The builder


def test_field_keys_come_from_labels_and_stay_when_relabelled(brand):
    form = make_form(brand, [field("choice", "Topic", options=["A"]), field("text", "Topic"),
                             field("text", "Email")])
    assert [f["key"] for f in form.field_list] == ["topic", "topic_2", "email_2"]
    relabelled = [{**form.field_list[0], "label": "Subject area"}, *form.field_list[1:]]
    form = forms.save_form(form.id, None, {"name": "Returns", "active": True}, relabelled)
    assert form.field_list[0]["key"] == "topic" and form.field_list[0]["label"] == "Subject area"


@pytest.mark.parametrize("keys, wrong", [(["topic", "topic"], 1), (["email", "other"], 0)])
def test_a_key_cannot_be_taken_twice_or_from_the_built_in_fields(brand, keys, wrong):
    fields = [{**field("text", f"Label {n}"), "key": key} for n, key in enumerate(keys)]
    with pytest.raises(forms.FormError) as error:
        make_form(brand, fields)
    assert "key is damaged" in error.value.errors[f"fields-{wrong}-label"]


def test_admin_builds_a_form_without_javascript_adding_moving_and_removing_fields(admin_client, brand):
    base = {"brand": str(brand.id), "name": "Returns", "active": "on"}
    page = post_form(admin_client, "/admin/forms/new", {**base, "action": "add", "new_kind": "choice"},
                     page="/admin/forms/new")
    assert page.status_code == 200 and "Not saved yet" in page.text
    assert 'name="fields-0-kind"' in page.text and Form.select().count() == 0
    two = {**base, "fields-0-kind": "choice", "fields-0-label": "Topic",
           "fields-0-options": "Refund\nExchange", "fields-1-kind": "order",
           "fields-1-label": "Order number"}
    moved = post_form(admin_client, "/admin/forms/new", {**two, "action": "down-0"}, page="/admin/forms/new")
    assert moved.text.index('value="Order number"') < moved.text.index('value="Topic"')
    removed = post_form(admin_client, "/admin/forms/new", {**two, "action": "remove-1"},
                        page="/admin/forms/new")
    assert 'value="Order number"' not in removed.text and 'value="Topic"' in removed.text
    saved = post_form(admin_client, "/admin/forms/new", {**two, "action": "save"},
                      page="/admin/forms/new", follow_redirects=False)
    assert saved.status_code == 303
    form = Form.get()
    assert (form.slug, [f["key"] for f in form.field_list]) == ("returns", ["topic", "order_number"])
    edit = admin_client.get(saved.headers["location"]).text
    assert "Saved." in edit and "/forms/acme/returns" in edit


def test_editor_names_what_is_wrong_and_keeps_the_input(admin_client, brand):
    response = post_form(admin_client, "/admin/forms/new",
                         {"brand": str(brand.id), "name": "Returns", "fields-0-kind": "choice",
                          "fields-0-label": "Topic", "fields-0-options": "", "fields-1-kind": "text",
                          "fields-1-label": "", "fields-1-help": "Kept help", "action": "save"},
                         page="/admin/forms/new")
    assert response.status_code == 400
    assert "Please list the options, one per line." in response.text
    assert "Please give this field a label." in response.text
    assert 'value="Kept help"' in response.text and Form.select().count() == 0


def test_two_forms_of_a_brand_cannot_share_an_address(admin_client, brand):
    make_form(brand)
    response = post_form(admin_client, "/admin/forms/new",
                         {"brand": str(brand.id), "name": "Returns", "action": "save"},
                         page="/admin/forms/new")
    assert response.status_code == 400 and "has a form at returns already" in response.text


def test_preview_renders_the_posted_fields_with_the_public_partial(admin_client, brand):
    response = post_form(admin_client, "/admin/forms/preview",
                         {"brand": str(brand.id), "name": "Returns", "fields-0-kind": "choice",
                          "fields-0-label": "Topic", "fields-0-options": "Refund\nExchange"},
                         page="/admin/forms/new", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.text.lstrip().startswith('<section id="form-preview"')
    assert "Acme Outdoor" in response.text and "<option>Exchange</option>" in response.text
    assert 'class="field field-choice"' in response.text and "Your email" in response.text


def test_forms_are_for_admins_only(agent_client, brand):
    assert agent_client.get("/admin/forms").status_code == 403
    form = make_form(brand)
    assert agent_client.get(f"/admin/forms/{form.id}").status_code == 403


def test_form_page_shows_the_brand_and_its_fields_in_order(client, brand):
    make_form(brand, intro="Tell us about your return.")
    page = client.get("/forms/acme/returns")
    assert page.status_code == 200 and "Acme Outdoor" in page.text
    assert "Tell us about your return." in page.text and 'enctype="multipart/form-data"' in page.text
    order = [page.text.index(f'name="{name}"') for name in
             ("name", "email", "field-topic", "field-order_number", "field-photos", "message")]
    assert order == sorted(order)
    assert client.get("/forms/acme/nope").status_code == 404


def test_a_closed_form_is_not_served(client, brand):
    form = make_form(brand)
    forms.save_form(form.id, None, {"name": "Returns", "active": False}, form.field_list)
    assert client.get("/forms/acme/returns").status_code == 404


# Submissions


def test_valid_submission_makes_a_ticket_with_its_fields_and_mails_a_confirmation(
        agent_client, brand, smtp_server):
    form = make_form(brand)
    response = send(agent_client, form, VALID)
    assert response.status_code == 200 and "Thank you" in response.text
    ticket = Ticket.get_by_id(reference(response))
    assert (ticket.channel, ticket.brand_id, ticket.form_id) == ("form", brand.id, form.id)
    assert ticket.subject == "Returns: The tent has a hole."
    message = Message.get(Message.ticket == ticket, Message.direction == "incoming")
    assert message.body_text == "The tent has a hole."  # the fields are not pasted into it
    fields = {f.label: f.value for f in ticket.form_fields}
    assert fields == {"Topic": "Refund", "Order number": "5521",
                      "I still have the original packaging": "yes", "Photos": ""}
    confirmation = smtp_server.wait_for(1)[0]
    assert confirmation["To"].addresses[0].addr_spec == "maria@example.org"
    assert f"[#{ticket.id}]" in confirmation["Subject"]
    text = confirmation.get_body(("plain",)).get_content()
    assert "What you sent us:" in text and "Order number: 5521" in text and "Topic: Refund" in text
    assert "Photos" not in text  # nothing was attached
    assert "<th align=\"left\" style=\"padding-right: 1em\">Order number</th><td>5521</td>" in \
        confirmation.get_body(("html",)).get_content()
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "Form: " in page and "<dt>Order number</dt>" in page and ">Refund</a>" in page


def test_missing_and_wrong_fields_are_named_and_everything_typed_is_kept(client, brand):
    form = make_form(brand)
    response = send(client, form, {**VALID, "email": "maria at example", "field-topic": "",
                                   "field-order_number": "", "message": ""})
    assert response.status_code == 400
    text = response.text
    assert "Please correct the marked fields." in text
    assert 'id="f-field-topic-error">Please choose one.<' in text
    assert 'id="f-field-order_number-error">Please fill this in.<' in text
    assert "This email address does not look right" in text
    assert 'value="maria at example"' in text and 'value="Maria Lopez"' in text
    assert 'value="yes" id="f-field-i_still_have_the_original"' in text and " checked>" in text
    assert 'aria-describedby="f-field-topic-error"' in text and 'aria-invalid="true"' in text
    assert Ticket.select().count() == 0


def test_a_choice_must_be_one_of_the_options(client, brand):
    form = make_form(brand)
    response = send(client, form, {**VALID, "field-topic": "Something else"})
    assert response.status_code == 400 and "Please choose one of the listed options." in response.text


@pytest.mark.parametrize("pattern, shape, good, bad, says", [
    ("digits", "", "004711", "47-11", "Please use digits only"),
    ("alnum", "", "AB4711", "AB 4711", "letters and digits only"),
    ("shape", "AB-#####", "AB-12345", "AB-1234", "It should look like AB-#####"),
    ("shape", "??/##.#", "xy/12.3", "xy/12,3", "It should look like ??/##.#"),
])
def test_an_order_number_must_match_its_pattern(client, brand, pattern, shape, good, bad, says):
    form = make_form(brand, [field("order", "Order number", True, pattern=pattern, shape=shape)])
    data = {"name": "Maria", "email": "maria@example.org", "message": "Hello"}
    refused = send(client, form, {**data, "field-order_number": bad})
    assert refused.status_code == 400 and says in refused.text and f'value="{bad}"' in refused.text
    accepted = send(client, form, {**data, "field-order_number": good})
    assert accepted.status_code == 200
    assert TicketField.get().value == good


def test_a_shape_pattern_needs_placeholders_the_editor_understands(brand):
    with pytest.raises(forms.FormError) as error:
        make_form(brand, [field("order", "Order number", pattern="shape", shape="AB-<script>")])
    assert "fields-0-shape" in error.value.errors


def test_editing_a_form_leaves_earlier_tickets_as_they_were_sent(agent_client, brand):
    form = make_form(brand)
    old_ticket = Ticket.get_by_id(reference(send(agent_client, form, VALID)))
    changed = [{**form.field_list[0], "label": "Reason", "options": ["Repair", "Refund"]},
               field("text", "Store")]
    forms.save_form(form.id, None, {"name": "Returns and repairs", "active": True}, changed)

    kept = [(f.label, f.kind, f.value) for f in
            TicketField.select().where(TicketField.ticket == old_ticket).order_by(TicketField.position)]
    assert kept == [("Topic", "choice", "Refund"), ("Order number", "order", "5521"),
                    ("I still have the original packaging", "checkbox", "yes"), ("Photos", "file", "")]
    page = agent_client.get(f"/tickets/{old_ticket.id}").text
    assert "<dt>Topic</dt>" in page and "<dt>Order number</dt>" in page and "<dt>Store</dt>" not in page
    # The key stayed, so the queue still finds the old ticket by the relabelled field.
    assert f'id="ticket-{old_ticket.id}"' in agent_client.get(
        f"/?form={form.id}&field=topic:Refund").text
    new_ticket = Ticket.get_by_id(reference(send(agent_client, form, {
        "name": "Tom", "email": "tom@example.org", "field-topic": "Repair",
        "field-store": "Berlin", "message": "Zip broken"})))
    assert [(f.label, f.value) for f in new_ticket.form_fields.order_by(TicketField.position)] == [
        ("Reason", "Repair"), ("Store", "Berlin")]


def test_too_long_input_is_refused_with_its_length_and_kept(client, brand, settings):
    form = make_form(brand)
    response = send(client, form, {**VALID, "field-order_number": "1" * 65,
                                   "message": "x" * (settings.max_message_chars + 1)})
    assert response.status_code == 400
    assert "This is too long: 65 characters, at most 64." in response.text
    assert "Your message is too long" in response.text and 'value="' + "1" * 65 + '"' in response.text


def test_a_request_over_the_size_limit_is_refused_before_it_is_read(client, brand):
    form = make_form(brand)
    response = send(client, form, VALID, files=[("field-photos", ("big.jpg", b"x" * 1_000_000, "image/jpeg"))])
    assert response.status_code == 413 and "What you sent is too large" in response.text
    assert Ticket.select().count() == 0


def test_files_are_stored_and_shown_on_the_ticket_like_mail_attachments(agent_client, brand, settings):
    form = make_form(brand)
    photo = b"\x89PNG fake photo bytes"
    response = send(agent_client, form, VALID, files=[
        ("field-photos", ("C:\\fakepath\\hole.png", photo, "image/png")),
        ("field-photos", ("", b"", "application/octet-stream"))])  # an empty second input
    ticket = Ticket.get_by_id(reference(response))
    attachment = Attachment.get()
    assert (attachment.filename, attachment.size, attachment.content_type) == ("hole.png", len(photo), "image/png")
    assert attachment.message.ticket_id == ticket.id
    assert TicketField.get(TicketField.key == "photos").value == "hole.png"
    assert agent_client.get(f"/attachments/{attachment.id}").content == photo
    assert "hole.png" in agent_client.get(f"/tickets/{ticket.id}").text


def test_a_file_over_the_limit_is_refused_on_its_field_and_the_rest_is_kept(client, brand):
    form = make_form(brand)
    response = send(client, form, VALID, files=[
        ("field-photos", ("small.png", b"ok", "image/png")),
        ("field-photos", ("huge.png", b"x" * (MAX_FILE_BYTES + 1), "image/png"))])
    assert response.status_code == 400
    assert "huge.png: a file can be at most" in response.text and "choose every file again" in response.text
    assert 'value="5521"' in response.text and "The tent has a hole." in response.text
    assert Ticket.select().count() == 0 and Attachment.select().count() == 0


def test_more_files_than_allowed_are_refused(client, brand):
    form = make_form(brand)
    files = [("field-photos", (f"p{n}.png", b"ok", "image/png")) for n in range(3)]
    response = send(client, form, VALID, files=files)
    assert response.status_code == 400 and "At most 2 files can be sent" in response.text
    assert Ticket.select().count() == 0


def test_a_required_file_must_be_attached(client, brand):
    form = make_form(brand, [field("file", "Receipt", True)])
    response = send(client, form, {"name": "M", "email": "m@example.org", "message": "Hi"})
    assert response.status_code == 400 and "Please attach a file." in response.text


def test_other_refusals_ask_for_the_chosen_files_again(client, brand):
    form = make_form(brand)
    response = send(client, form, {**VALID, "field-topic": ""},
                    files=[("field-photos", ("hole.png", b"ok", "image/png"))])
    assert response.status_code == 400 and "Please choose your file again" in response.text


def test_the_honeypot_refuses_with_a_clear_message_and_keeps_the_input(client, brand):
    form = make_form(brand)
    response = send(client, form, {**VALID, "website": "http://spam.example"})
    assert response.status_code == 400 and "meant to stay empty" in response.text
    assert 'value="maria@example.org"' in response.text and Ticket.select().count() == 0


def test_a_form_sent_faster_than_a_person_can_is_refused_then_taken(client, brand, settings):
    form = make_form(brand)
    page = client.get("/forms/acme/returns").text
    token = re.search(r'name="started" value="([^"]+)"', page).group(1)
    submission_id = re.search(r'name="submission_id" value="([0-9a-f]+)"', page).group(1)
    quick = client.post("/forms/acme/returns",
                        data={**VALID, "started": token, "submission_id": submission_id})
    assert quick.status_code == 400 and "faster than a person can fill it in" in quick.text
    assert 'value="Maria Lopez"' in quick.text and f'value="{token}"' in quick.text
    assert Ticket.select().count() == 0
    # The time counts from when the page was first served: sent again later, it is taken.
    later = forms.start_token(settings.secret_key, form.id, time.time() - settings.form_min_fill_seconds)
    again = client.post("/forms/acme/returns",
                        data={**VALID, "started": later, "submission_id": submission_id})
    assert again.status_code == 200 and Ticket.select().count() == 1


def test_too_many_submissions_from_one_address_are_refused(app, client, brand, settings):
    app.state.rate_limits = RateLimits(settings.with_changes(form_rate_per_address="2/hour"))
    form = make_form(brand)
    assert send(client, form, VALID).status_code == 200
    assert send(client, form, VALID).status_code == 200
    refused = send(client, form, VALID)
    assert refused.status_code == 429 and "Please wait a while" in refused.text
    assert 'value="5521"' in refused.text and Ticket.select().count() == 2
    assert send(client, form, {**VALID, "email": "other@example.org"}).status_code == 200


def test_the_same_submission_sent_twice_makes_one_ticket(client, brand):
    form = make_form(brand)
    page = client.get("/forms/acme/returns").text
    submission_id = re.search(r'name="submission_id" value="([0-9a-f]+)"', page).group(1)
    data = {**VALID, "submission_id": submission_id,
            "started": forms.start_token("test-secret-key", form.id, time.time() - 10)}
    first, again = client.post("/forms/acme/returns", data=data), client.post("/forms/acme/returns", data=data)
    assert reference(first) == reference(again) and Ticket.select().count() == 1


def test_a_post_from_another_site_without_token_is_confirmed_with_one_click(app, brand, smtp_server):
    from starlette.testclient import TestClient

    form = make_form(brand)
    # A page on the shop's own site posts the snippet: no cookie, no CSRF token, no timestamp.
    with TestClient(app, base_url="http://127.0.0.1") as visitor:
        response = visitor.post("/forms/acme/returns", data=VALID,
                                headers={"Origin": "https://shop.example",
                                         "Referer": "https://shop.example/returns"})
        assert response.status_code == 200 and not visitor.cookies.get("session")
        assert "Please check what you entered and press Send to confirm." in response.text
        assert 'value="Maria Lopez"' in response.text and Ticket.select().count() == 0
        token = re.search(r'name="started" value="([^"]+)"', response.text).group(1)
        submission_id = re.search(r'name="submission_id" value="([0-9a-f]+)"', response.text).group(1)
        confirmed = visitor.post("/forms/acme/returns",
                                 data={**VALID, "started": token, "submission_id": submission_id})
    assert confirmed.status_code == 200 and "Thank you" in confirmed.text
    assert Ticket.get_by_id(reference(confirmed)).form_id == form.id


def test_a_post_without_token_and_with_mistakes_shows_them_and_then_takes_the_correction(client, brand):
    form = make_form(brand)
    response = client.post("/forms/acme/returns", data={**VALID, "field-order_number": "55-21"})
    assert response.status_code == 400 and "Please use digits only" in response.text
    token = re.search(r'name="started" value="([^"]+)"', response.text).group(1)
    assert forms.seconds_since_start("test-secret-key", form.id, token) is not None
    corrected = client.post("/forms/acme/returns", data={**VALID, "started": token})
    assert corrected.status_code == 200 and "Thank you" in corrected.text


def test_a_token_of_another_form_counts_as_none(client, brand):
    form = make_form(brand)
    other = make_form(brand, name="Repairs")
    foreign = forms.start_token("test-secret-key", other.id, time.time() - 60)
    response = send(client, form, VALID, token=foreign)
    assert response.status_code == 200 and "press Send to confirm" in response.text
    assert Ticket.select().count() == 0


# Framing


def test_the_iframe_variant_is_frameable_by_the_brands_sites_only(client, brand):
    form = make_form(brand)
    page = client.get("/forms/acme/returns")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    anywhere = client.get("/forms/acme/returns/embed")
    assert "frame-ancestors *" in anywhere.headers["content-security-policy"]
    assert "x-frame-options" not in anywhere.headers
    assert 'class="public embedded"' in anywhere.text and 'action="/forms/acme/returns/embed"' in anywhere.text
    brand_service.update_brand("acme", {**{k: getattr(brand, k) for k in brand_service.FIELDS},
                                        "allowed_origins": "https://shop.example\nhttps://www.shop.example"})
    listed = client.get("/forms/acme/returns/embed")
    policy = listed.headers["content-security-policy"]
    assert "frame-ancestors https://shop.example https://www.shop.example" in policy
    assert "script-src 'self'" in policy and "x-frame-options" not in listed.headers
    thanks = send(client, form, VALID, embed=True)
    assert "Thank you" in thanks.text and "https://shop.example" in thanks.headers["content-security-policy"]


def test_the_admin_page_offers_both_snippets_escaped(admin_client, brand):
    form = make_form(brand, name='Returns "quoted" <b>')
    page = admin_client.get(f"/admin/forms/{form.id}").text
    assert "&lt;form method=&#34;post&#34; action=&#34;http://127.0.0.1/forms/acme/" in page
    assert "name=&#34;field-topic&#34;" in page and "name=&#34;website&#34;" in page
    assert "&lt;iframe src=&#34;http://127.0.0.1/forms/acme/" in page
    assert "<b>" not in page.split('id="snippet-html"')[1]
    assert "any website can show this iframe" in page
    snippet = forms.embed_snippet(form, "http://127.0.0.1")
    assert "csrftoken" not in snippet and 'name="started"' not in snippet


# The queue


def test_the_queue_filters_by_form_and_by_a_choice_value_with_counters(agent_client, brand):
    form = make_form(brand)
    other = make_form(brand, [field("choice", "Topic", options=["Refund"])], name="Repairs")
    refund = reference(send(agent_client, form, VALID))
    exchange = reference(send(agent_client, form, {**VALID, "field-topic": "Exchange"}))
    elsewhere = reference(send(agent_client, other, {**VALID, "field-topic": "Refund"}))

    def rows(query):
        return [int(n) for n in re.findall(r'<li id="ticket-(\d+)"', agent_client.get(query).text)]

    assert set(rows(f"/?form={form.id}")) == {refund, exchange}
    assert rows(f"/?form={form.id}&field=topic:Refund") == [refund]
    assert set(rows("/?field=topic:Refund")) == {refund, elsewhere}
    assert rows(f"/?form={form.id}&field=i_still_have_the_original:no") == []
    page = agent_client.get(f"/?form={form.id}").text
    assert re.search(r'status=all&amp;form=\d+" >All <span class="count">2</span>', page)
    assert ">Topic: Exchange</a>" in page and ">Topic: any</a>" in page
    assert "Returns · Acme Outdoor" in page


def test_live_pushes_follow_the_form_filters(brand):
    form = make_form(brand)
    other = make_form(brand, [], name="Feedback")
    sub = forms.Submission(values={"name": "M", "email": "m@example.org", "message": "Hi",
                                   "topic": "Exchange", "order_number": "1"})
    ticket = receive(forms.incoming(form, sub, []), "test-secret-key").ticket
    row = queue.queue_row(ticket.id)
    brand_ids = {"acme": brand.id}

    def matches(**params):
        return queue.ticket_matches(queue.QueueFilter.from_params(params), 1, brand_ids, row)

    assert matches(form=str(form.id)) and not matches(form=str(other.id))
    assert matches(form=str(form.id), field="topic:Exchange")
    assert not matches(field="topic:Refund")


def test_filter_by_field_uses_an_index(brand):
    condition = queue._where(queue.QueueFilter(field="topic:Refund"), 1, {})
    query = queue.row_query().where(*condition).order_by(Ticket.last_activity_at.desc()).limit(51)
    sql, params = query.sql()
    plan = " ".join(str(row) for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
    assert "ticket_field_key_choice_ticket_id" in plan


# Schema


def test_an_older_database_gets_the_forms_tables_and_column(settings, brand):
    database.execute_sql("DROP TABLE ticket_field")
    database.execute_sql("DROP TABLE form")
    database.execute_sql("DROP INDEX ticket_form_id_last_activity_at_id")
    database.execute_sql("ALTER TABLE ticket DROP COLUMN form_id")
    db.SchemaVersion.delete().where(db.SchemaVersion.version == 3).execute()
    db.connect(settings)
    assert "form_id" in {c.name for c in database.get_columns("ticket")}
    assert "ticket_form_id_last_activity_at_id" in {i.name for i in database.get_indexes("ticket")}
    form = make_form(brand)
    assert Form.get_by_id(form.id).name == "Returns"
    with pytest.raises(peewee.IntegrityError):
        Form.create(brand=brand.id, slug="returns", name="Twin")  # the unique (brand, slug) index


def test_the_demo_has_a_returns_form_per_brand_and_tickets_sent_with_it(app):
    from app.services import demo

    demo.load("test-secret-key")
    assert {(f.brand.slug, f.name) for f in Form.select()} == {("acme", "Returns"), ("books", "Returns")}
    ticket = Ticket.get(Ticket.subject == "Return label missing")
    assert ticket.form_id == Form.get(Form.brand == ticket.brand).id
    assert {f.label: f.value for f in ticket.form_fields} == {
        "Topic": "Missing return label", "Order number": "5521",
        "I still have the original packaging": "yes", "Photos": ""}
