"""One vocabulary on a page: an RFM segment's name never reuses a lifecycle stage's word, so 休眠
(dormant) or 新客 (new) never has two counts on one page (issue 26)."""
from crmlab.analyses.rfm import SEGMENTS
from crmlab.present.glossary import GLOSSARY


def test_rfm_segments_never_reuse_a_lifecycle_stage_word():
    stages = {GLOSSARY[k][0] for k in ("new", "dormant", "lost")}
    assert stages == {"新客", "休眠", "流失"}
    for key, name in SEGMENTS.items():
        assert not any(word in name for word in stages), (key, name)
        assert key not in ("dormant", "lost")
