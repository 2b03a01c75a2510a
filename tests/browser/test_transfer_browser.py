"""A domain's forwards exported as CSV from "Redirections" and imported back, and POP accounts
pasted into "Comptes Pop"'s import, in Debian's Chromium, in French and in English: the file
downloaded, the report read, every page watched for Content-Security-Policy reports."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from mail.models import Forward, Mailbox
from tests.browser.conftest import save_screenshot
from tests.browser.test_seed_browser import DOMAIN, Person
from tests.factories import MAILBOX_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "fr-FR": {"login": "Connexion", "forwards": "Redirections", "accounts": "Comptes Pop", "export": "Exporter en CSV",
              "import": "Importer un fichier CSV", "submit": "Importer", "lines": "Lignes",
              "finished": "L'import est terminé.", "created": "Créés", "present": "Déjà là", "refused": "Refusées",
              "h1_forwards": f"Import de redirections dans {DOMAIN}",
              "h1_accounts": f"Import de comptes Pop dans {DOMAIN}",
              "no_password": "Un mot de passe est nécessaire pour créer un compte Pop."},
    "en-US": {"login": "Log in", "forwards": "Forwards", "accounts": "POP accounts", "export": "Export as CSV",
              "import": "Import from CSV", "submit": "Import", "lines": "Lines",
              "finished": "The import is finished.", "created": "Created", "present": "Already there",
              "refused": "Refused", "h1_forwards": f"Import of forwards into {DOMAIN}",
              "h1_accounts": f"Import of POP accounts into {DOMAIN}",
              "no_password": "A password is needed to create a POP account."},
}


def facts(person: Person) -> dict[str, str]:
    rows = person.page.locator("main table.facts-table tr")
    return {rows.nth(n).locator("th").inner_text().strip(): rows.nth(n).locator("td").inner_text().strip()
            for n in range(rows.count())}


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"], indirect=True)
def test_forwards_exported_then_imported_and_accounts_pasted(transactional_db: Any, cast: Any, live_server: Any,
                                                             page: Any, browser_locale: str, tmp_path: Path) -> None:
    words = WORDS[browser_locale]
    Forward.objects.create(domain=cast.a.domain, local_part="sales", destinations=["a@remote.test", "b@remote.test"])
    Forward.objects.create(domain=cast.a.domain, local_part="-info", destinations=["c@remote.test"])
    person = Person(page, live_server.url)
    person.open("/login/")
    page.locator("#id_account").fill("postmaster")
    page.locator("#id_domain").fill(DOMAIN)
    page.locator("#id_password").fill(MAILBOX_PASSWORD)
    person.click(person.button(words["login"]))
    person.open(f"/domains/{cast.a.domain.pk}/forwards/")

    # The export: a file, UTF-8 with its BOM, the formula-like cell neutralised.
    with page.expect_download() as info:
        person.link(words["export"]).click()
    download = info.value
    assert download.suggested_filename == f"{DOMAIN}-forwards.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = saved.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text[1:]))) == [
        ["address", "destinations"], [f"'-info@{DOMAIN}", "c@remote.test"],
        [f"sales@{DOMAIN}", "a@remote.test b@remote.test"]]

    # The same file imported back after one forward was deleted: one created, one already there.
    Forward.objects.filter(local_part="sales").delete()
    person.click(person.link(words["import"]))
    assert person.h1().startswith(words["submit"])
    page.locator("main input[type=file]").set_input_files(str(saved))
    person.click(person.button(words["submit"]))
    assert person.h1() == words["h1_forwards"]
    assert words["finished"] in person.main_text()
    assert facts(person) == {words["lines"]: "2", words["created"]: "1", words["present"]: "1", words["refused"]: "0"}
    assert Forward.objects.get(local_part="sales").destinations == ["a@remote.test", "b@remote.test"]

    # POP accounts pasted: one created, one refused with its reason in the page's language.
    person.open(f"/domains/{cast.a.domain.pk}/accounts/")
    person.click(person.link(words["import"]))
    page.locator("main textarea").fill("address;real_name;quota_mb;password\n"
                                       "nouveau;Jean Dupont;100;Velvet-Otter-9137\n"
                                       "sanspasse;Sans Passe;;\n")
    save_screenshot(page, f"transfer-1-import-{browser_locale}")
    person.click(person.button(words["submit"]))
    save_screenshot(page, f"transfer-2-report-{browser_locale}")
    assert person.h1() == words["h1_accounts"]
    assert facts(person) == {words["lines"]: "2", words["created"]: "1", words["present"]: "0", words["refused"]: "1"}
    assert words["no_password"] in person.main_text() and "Velvet-Otter" not in page.content()
    assert Mailbox.objects.get(domain=cast.a.domain, local_part="nouveau").real_name == "Jean Dupont"
