"""The start page under Voila in a real browser: every lecture listed and linked, no page error."""
import pytest

from dclab.lectures import LECTURES

pytestmark = pytest.mark.browser


def test_start_page_lists_lectures_in_order(open_dashboard):
    dashboard = open_dashboard("00_start_here.ipynb", wait_for=".dclab-lectures")
    links = dashboard.page.locator(".dclab-lectures a")
    assert links.count() == len(LECTURES)
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [lec.notebook for lec in LECTURES]
    assert "cache (trained baselines)" in dashboard.page.content()
    dashboard.assert_no_errors()
