"""The alias table: many spellings, one actor."""

from culpa.events.actors import AliasTable


def test_islamic_state_spellings_resolve_to_one_actor():
    table = AliasTable.builtin()
    names = ["IS", "ISIS", "ISIL", "Islamic State", "Daesh", "islamic  state", "Da’ish"]
    assert {table.resolve(n) for n in names} == {"IS"}


def test_unknown_names_stay_as_written_and_unidentified_means_none():
    table = AliasTable.builtin()
    assert table.resolve("Southern Front") == "Southern Front"
    assert table.resolve("Unidentified Armed Group (Iraq)") is None
    assert table.resolve("Unknown") is None


def test_coalition_members_resolve_one_by_one_and_sort():
    table = AliasTable.builtin()
    assert table.resolve_members("Hayat Tahrir al-Sham, Ahrar al-Sham") == ["Ahrar al-Sham", "HTS"]
    assert table.resolve_members("Daesh") == ["IS"]


def test_user_table_overrides(tmp_path):
    extra = tmp_path / "a.yaml"
    extra.write_text("Kata'ib Hezbollah:\n  - Brigades of the Party of God\n")
    table = AliasTable.load([extra])
    assert table.resolve("Brigades of the Party of God") == "Kata'ib Hezbollah"
    assert table.resolve("Kataib Hizbullah") == "Kata'ib Hezbollah"


def test_a_name_with_its_acronym_in_brackets_resolves_through_either():
    table = AliasTable.builtin()
    assert table.resolve("Islamic State of Iraq and the Levant (ISIL)") == "IS"
    assert table.resolve("Kurdistan Workers' Party (PKK)") == "PKK"
    assert table.resolve("Some Brigade (SB)") == "Some Brigade (SB)"
