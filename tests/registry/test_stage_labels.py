"""A version that has not been staged reads "registered", never "None"."""

import re

from django.urls import reverse

from registry.choices import Stage


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_a_version_without_a_stage_reads_registered_in_its_heading(churn_v1, owner, client_for):
    html = client_for(owner).get(churn_v1.get_absolute_url()).content.decode()
    heading = re.search(r"<h1>.*?</h1>", html, re.S).group(0)
    assert "Registered" in heading and "None" not in heading


def test_the_versions_table_reads_registered(churn_v1, owner, client_for):
    html = client_for(owner).get(reverse("registry:model_detail", args=["churn"])).content.decode()
    table = html[html.index('<section id="versions">') :]
    assert re.search(r'<span class="badge badge-none">\s*Registered\s*</span>', table)
    assert ">None<" not in html


def test_the_promotion_form_reads_registered_for_the_current_stage(churn_v1, owner, client_for):
    url = reverse("registry:promotion_create", args=["churn", churn_v1.version])
    text = _text(client_for(owner).get(url).content.decode())
    assert re.search(r"Current stage\s+Registered", text)


def test_the_stage_label_is_registered():
    assert Stage.NONE.label == "Registered" and Stage.NONE.value == "none"
