"""Unit tests for mailbot.intent: own words, codes, withdrawals and mentioned names.

A wrong "cancel" takes a participant's seat away, so the tables below hold many phrasings
that must be cancels, many that must go to a human ("unclear") and many that must be left
alone ("none"), in the shapes real replies take: quoted, top-posted above an Outlook
header, without diacritics, in capitals.
"""

from __future__ import annotations

import pytest

from mailbot.intent import (
    FOOTER_SENTENCE,
    MAX_TEXT_CHARS,
    Withdrawal,
    detect_withdrawal,
    find_codes,
    mentioned_names,
    strip_quoted,
)

# --------------------------------------------------------------------------- fixtures

ACK_SUBJECT = "Re: Potwierdzenie zgłoszenia [OPO-7K3FQ] – Opole, 18 kwietnia 2016 r."

# Our acknowledgement as a mail client quotes it (without '>' — Outlook style).
ACK_BODY = """Dzień dobry,

dziękujemy za przesłanie zgłoszenia. Potwierdzamy udział w konferencji:

Zgłoszenie nr OPO-7K3FQ – Szkoła Podstawowa nr 5 w Opolu
  1. Anna Kowalska, nauczycielka <anna@sp5.example.pl>

Jeśli chcą Państwo coś zmienić, wystarczy odesłać poprawiony formularz w odpowiedzi na tę wiadomość.

Z poważaniem
Biuro konferencji

--
Ta wiadomość została wysłana automatycznie w odpowiedzi na wiadomość „Zgłoszenie”.
Odpowiadając, prosimy zachować w temacie numer zgłoszenia [OPO-7K3FQ].
Aby zrezygnować z udziału, wystarczy odpowiedzieć na tę wiadomość, wpisując w treści słowo „rezygnuję”.
W razie pytań prosimy po prostu odpowiedzieć na ten e-mail.
"""


def outlook_reply(own: str, lang: str = "pl") -> str:
    """``own`` above an Outlook header block and our unquoted acknowledgement."""
    if lang == "pl":
        header = (
            "Od: Biuro konferencji [mailto:zgloszenia@konferencja.example.pl]\n"
            "Wysłano: wtorek, 12 kwietnia 2016 10:15\n"
            "Do: anna@sp5.example.pl\n"
            "Temat: Potwierdzenie zgłoszenia [OPO-7K3FQ]\n"
        )
    else:
        header = (
            "From: Biuro konferencji <zgloszenia@konferencja.example.pl>\n"
            "Sent: Tuesday, April 12, 2016 10:15 AM\n"
            "To: anna@sp5.example.pl\n"
            "Subject: Potwierdzenie zgłoszenia [OPO-7K3FQ]\n"
        )
    return f"{own}\n\n________________________________\n{header}\n{ACK_BODY}"


TB_ATTRIBUTION = "W dniu 12.04.2016 o 10:15, Biuro <zgloszenia@konferencja.example.pl> pisze:"


def gt_quoted(own: str, attribution: str = TB_ATTRIBUTION) -> str:
    """``own`` above a '>'-quoted acknowledgement (Thunderbird/Gmail style)."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in ACK_BODY.splitlines())
    return f"{own}\n\n{attribution}\n{quoted}\n"


# --------------------------------------------------------------------------- strip_quoted


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Rezygnuję.\n\n> Dzień dobry,\n> >rezygnuję\n", "Rezygnuję."),
        ("Dziękuję.\n\n-----Original Message-----\nFrom: x\nrezygnuję", "Dziękuję."),
        ("Dziękuję.\n\n-----Wiadomość oryginalna-----\nOd: x\nrezygnuję", "Dziękuję."),
        (
            "Dziękuję.\n\nW dniu 12.04.2016 o 10:15, Jan Kowalski <jan@x.pl> pisze:\nrezygnuję",
            "Dziękuję.",
        ),
        (
            "Dziękuję.\n\nDnia 2016-04-12 10:15 Jan Kowalski <jan@x.pl> napisał(a):\nrezygnuję",
            "Dziękuję.",
        ),
        (
            "Thanks.\n\nOn Tue, Apr 12, 2016 at 10:15 AM, Jan Kowalski <jan@x.pl> wrote:\nrezygnuję",
            "Thanks.",
        ),
        (  # Gmail wraps a long attribution
            "Thanks.\n\nOn Tue, Apr 12, 2016 at 10:15 AM, Jan Kowalski <\njan@x.pl> wrote:\nrezygnuję",
            "Thanks.",
        ),
        (  # new Gmail PL: weekday first, no "W dniu"
            "Dzięki.\n\nwt., 12 kwi 2016 o 10:15 Jan Kowalski <jan@x.pl> napisał(a):\nrezygnuję",
            "Dzięki.",
        ),
        (
            (
                "Dziękuję.\n\nWiadomość napisana przez Jan Kowalski <jan@x.pl> w dniu 12.04.2016, "
                "o godz. 10:15:\nrezygnuję"
            ),
            "Dziękuję.",
        ),
        (
            "Dziękuję.\n\nOd: Biuro\nWysłano: wtorek, 12 kwietnia 2016 10:15\nDo: anna@x.pl\nTemat: Re\n\nrezygnuję",
            "Dziękuję.",
        ),
        (
            "Thanks.\r\n\r\n*From:* Biuro\r\n*Sent:* Tuesday\r\n*To:* anna@x.pl\r\n*Subject:* Re\r\n\r\nrezygnuję",
            "Thanks.",
        ),
        (
            "Dziękuję.\n\n---------- Forwarded message ---------\nFrom: Biuro\nrezygnuję",
            "Dziękuję.",
        ),
        (
            "Dziękuję.\n\n---------- Wiadomość przekazana dalej ---------\nOd: Biuro\nrezygnuję",
            "Dziękuję.",
        ),
        ("Dziękuję.\n-- \nJan Kowalski\nrezygnuję z nałogów", "Dziękuję."),
        ("Dziękuję.\n--\nJan Kowalski", "Dziękuję."),
        (f"Dziękuję.\n\n{FOOTER_SENTENCE}\nPozdrawiam", "Dziękuję.\n\n\nPozdrawiam"),
        (  # footer re-wrapped by the client, quotes lost
            (
                "Dziękuję.\nAby zrezygnować z udziału, wystarczy odpowiedzieć na\n"
                'tę wiadomość, wpisując w treści słowo "rezygnuję".'
            ),
            "Dziękuję.",
        ),
        (  # bottom posting: text under a '>' quote is the person's own
            "W dniu 12.04.2016 o 10:15, Biuro <b@x.pl> pisze:\n> Potwierdzamy udział\n\nRezygnuję.",
            "Rezygnuję.",
        ),
        (  # an own line that merely starts like an attribution stays
            "On my way.\nOn Tue, Apr 12, 2016 at 10:15 AM, Jan <jan@x.pl> wrote:\n> x",
            "On my way.",
        ),
        (  # Thunderbird forward
            "Proszę.\n\n-------- Przekazana wiadomość --------\nTemat: x\nData: y\nNadawca: z\n\nrezygnuję",
            "Proszę.",
        ),
        (  # Interia: the header block starts with the subject
            "Dziękuję.\n\nTemat: Re\nOd: Biuro <b@x.pl>\nDo: a@b.pl\nData: 12.04.2016\n\nrezygnuję",
            "Dziękuję.",
        ),
        ("Dziękuję.\n\nBegin forwarded message:\n\nFrom: x\nrezygnuję", "Dziękuję."),
        ("Dziękuję.\n\nPoczątek przekazywanej wiadomości:\n\nOd: x\nrezygnuję", "Dziękuję."),
        ("Jak Pan napisał:\nrezygnuję", "Jak Pan napisał:\nrezygnuję"),  # no date, no address
        ("Zwykła wiadomość\nw dwóch liniach", "Zwykła wiadomość\nw dwóch liniach"),
        ("", ""),
    ],
)
def test_strip_quoted(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


def test_strip_quoted_outlook_reply_keeps_only_the_top() -> None:
    assert strip_quoted(outlook_reply("Dzień dobry,\nrezygnuję z udziału.\nAnna Kowalska")) == (
        "Dzień dobry,\nrezygnuję z udziału.\nAnna Kowalska"
    )
    assert strip_quoted(outlook_reply("Dziękuję", lang="en")) == "Dziękuję"


def test_strip_quoted_gt_reply_keeps_only_the_top() -> None:
    assert strip_quoted(gt_quoted("Dziękuję bardzo!")) == "Dziękuję bardzo!"


def test_footer_matches_the_template_sentence() -> None:
    from mailbot.templating import WITHDRAWAL_SENTENCE

    assert FOOTER_SENTENCE == WITHDRAWAL_SENTENCE


def test_person_text_mentioning_od_is_not_a_header() -> None:
    text = "Od: poniedziałku jestem na urlopie.\nRezygnuję."
    assert strip_quoted(text) == text


# --------------------------------------------------------------------------- find_codes


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Re: Potwierdzenie zgłoszenia [OPO-7K3FQ]", ["OPO-7K3FQ"]),
        ("[OPO-7K3FQ]", ["OPO-7K3FQ"]),
        ("kod opo-7k3fq proszę", ["OPO-7K3FQ"]),
        ("Kod: Opo-7k3Fq.", ["OPO-7K3FQ"]),
        ("A-22222 i WR-ABCDE oraz OPO-7K3FQ", ["A-22222", "WR-ABCDE", "OPO-7K3FQ"]),
        ("OPO-7K3FQ, OPO-7K3FQ i opo-7k3fq", ["OPO-7K3FQ"]),
        ("> Zgłoszenie nr OPO-7K3FQ – SP 5\nRe: KAT-M9X2P", ["OPO-7K3FQ", "KAT-M9X2P"]),
        ("(OPO-7K3FQ)", ["OPO-7K3FQ"]),
    ],
)
def test_find_codes(text: str, expected: list[str]) -> None:
    assert find_codes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Opole, ul. Ozimska 45-082",
        "45-082 Opole",
        "data 2016-04-12 godz. 10:15",
        "tel. 77-123-45-67, +48 600-700-800",
        "RE-ABCDE1",
        "OPOL-7K3FQ",
        "OPO-7K3F",
        "OPO-7K3FQ-2",
        "X-OPO-7K3FQ",
        "OPO-7K0FQ",  # 0 is not in the alphabet
        "OPO-7K1FQ",  # nor 1
        "OPO-7KIFQ",  # nor I
        "proszę o e-mail",
        "OPO7K3FQ",
    ],
)
def test_find_codes_ignores_lookalikes(text: str) -> None:
    assert find_codes(text) == []


# --------------------------------------------------------------------------- withdrawals

CANCELS: list[tuple[str, str]] = [
    ("", "Rezygnuję."),
    ("", "rezygnuję z udziału w konferencji"),
    ("", "REZYGNUJĘ"),
    ("", "rezygnuje"),
    ("", "Dzien dobry, rezygnuje z udzialu. Pozdrawiam"),
    ("", "Rezygnujemy z udziału w konferencji w Opolu."),
    ("", "Niestety muszę zrezygnować z udziału."),
    ("", "Chciałabym zrezygnować z udziału w konferencji."),
    ("", "Z przykrością informuję, że zdecydowałam się zrezygnować."),
    ("", "Jestem zmuszona zrezygnować z powodu choroby."),
    ("", "Odwołuję mój udział w konferencji."),
    ("", "Odwołujemy udział naszych nauczycieli."),
    ("", "Wycofuję zgłoszenie."),
    ("", "Wycofuję swój udział."),
    ("", "Z przyczyn służbowych wycofujemy się."),
    ("", "Proszę o wykreślenie z listy uczestników."),
    ("", "Proszę o wykreślenie mnie z listy."),
    ("", "Proszę skreślić Annę Kowalską."),
    ("", "Nie wezmę udziału w konferencji."),
    ("", "Niestety nie weźmiemy udziału."),
    ("", "Nie będę mogła uczestniczyć w konferencji."),
    ("", "Nie będę mógł przyjechać."),
    ("", "Niestety nie możemy przyjechać."),
    ("", "Z powodu choroby nie przyjadę."),
    ("", "Zgłaszam rezygnację z udziału Pani Anny Kowalskiej."),
    ("", "Proszę o anulowanie mojego zgłoszenia."),
    ("", "Niestety nie będzie mnie na konferencji."),
    ("", "Rezygnuje Pani Anna Kowalska."),
    ("", "rezygnacja z udziału"),
    ("Rezygnacja", ""),
    ("RE: Rezygnacja z udziału", "Dzień dobry, w załączeniu pismo."),
    ("Re: Rezygnacja [OPO-7K3FQ]", "Pozdrawiam\nAnna Kowalska"),
    ("Jan Kowalski - rezygnacja", ""),
    ("rezygnuję", ""),
    (ACK_SUBJECT, outlook_reply("Dzień dobry,\nrezygnuję z udziału.\nAnna Kowalska")),
    (ACK_SUBJECT, outlook_reply("Niestety nie będę mogła przyjechać, rezygnuję.", lang="en")),
    (ACK_SUBJECT, gt_quoted("REZYGNUJE")),
    (ACK_SUBJECT, gt_quoted("Rezygnuję z udziału. Proszę o potwierdzenie rezygnacji.")),
    (ACK_SUBJECT, gt_quoted("Rezygnuję.\n\nCzy dostanę zaświadczenie za poprzednią konferencję?")),
    (ACK_SUBJECT, f"{TB_ATTRIBUTION}\n> Potwierdzamy udział\n\nRezygnuję z udziału."),  # bottom post
    ("", "Pani Kowalska nie może przyjechać."),
    ("", "Informuję, że Pani Anna Kowalska zrezygnowała z udziału."),
    ("", "Skreślcie mnie proszę."),
    ("", "Proszę o usunięcie mnie z listy uczestników."),
    ("", "Niestety nie będziemy obecni."),
    ("", "Z przykrością informuję, że nie będziemy mogli uczestniczyć w konferencji."),
    ("", "niestety nie dam rady przyjechać :("),
    ("", "Dyrektor odwołał wyjazd, więc niestety nie przyjedziemy."),
]


@pytest.mark.parametrize("subject, text", CANCELS)
def test_clear_cancel(subject: str, text: str) -> None:
    result = detect_withdrawal(subject, text)
    assert result.kind == "cancel", result
    assert result.phrase and result.reason.startswith("withdrawal: ")


UNCLEAR: list[tuple[str, str]] = [
    ("", "Nie rezygnuję, proszę o zostawienie zgłoszenia."),
    ("", "Nie chcę rezygnować, ale termin jest trudny."),
    ("", "Czy mogę zrezygnować?"),
    ("", "Jak zrezygnować z udziału"),
    ("", "Czy można odwołać udział bez konsekwencji"),
    ("", "Być może będę musiał zrezygnować."),
    ("", "Możliwe, że nie przyjadę."),
    ("", "Jeśli termin się nie zmieni,\nto rezygnuję."),
    ("", "Rezygnuję, ale w zamian zgłaszam Panią Ewę Nowak."),
    ("", "Zamiast mnie przyjedzie Jan Nowak."),
    ("", "Rezygnuję z noclegu."),
    ("", "Rezygnuję z udziału w kolacji."),
    ("", "Nie będę mogła uczestniczyć w drugim dniu konferencji."),
    ("", "Wycofuję moją rezygnację, jednak przyjadę."),
    ("", "Rozważam rezygnację."),
    ("", "Do kiedy można zgłosić rezygnację bez kosztów"),
    ("", "Niestety odwołuję."),
    ("", "Wycofuję poprzednie zgłoszenie, w załączeniu nowe."),
    ("", "Rezygnuję. W załączeniu nowy formularz dla innej osoby."),
    ("Pytanie o rezygnację", "Dzień dobry, jakie są zasady?"),
    ("Rezygnacja?", ""),
    ("Rezygnacja", "Jednak nie rezygnuję, przepraszam za zamieszanie."),
    ("", "Rezygnuje z udzialu, czy otrzymam zwrot kosztow?"),
    ("", "Proszę skreślić punkt 3 formularza."),
    ("", "Nie wiem, czy przyjadę."),
    (ACK_SUBJECT, outlook_reply("Czy mogę jeszcze zrezygnować?")),
    (ACK_SUBJECT, gt_quoted("W moim zastępstwie będzie Pan Jan Nowak.")),
    # third person without a name: whom would it take off the list?
    ("", "Kolega nie może przyjechać."),
    ("", "Nikt z naszej szkoły nie przyjedzie."),
    # somebody else still comes, so the names in the message are not all withdrawals
    ("", "Kolega nie może przyjechać, przyjadę sama."),
    ("", "Anna Kowalska rezygnuje z udziału, Jan Nowak przyjedzie."),
    ("", "Rezygnuję z prezentacji plakatu, ale przyjadę."),
    # late, not absent
    ("", "Wiem, że nie dotrę na czas."),
    ("", "Przepraszam, ale nie dojadę na 9:00, będę ok. 10."),
    ("", "Proszę o potwierdzenie rezygnacji."),
    ("", "Czy jest możliwość zmiany uczestnika? Pani Anna nie może przyjechać."),
]


@pytest.mark.parametrize("subject, text", UNCLEAR)
def test_unclear(subject: str, text: str) -> None:
    result = detect_withdrawal(subject, text)
    assert result.kind == "unclear", result
    assert result.phrase and result.reason.startswith("unclear: ")


NONE: list[tuple[str, str]] = [
    ("Zgłoszenie", "Przesyłam zgłoszenie."),
    ("Formularz", "W załączeniu formularz."),
    ("", "Dziękuję za potwierdzenie."),
    ("", "Potwierdzam udział."),
    ("", "Dzień dobry, czy będzie możliwość noclegu?"),
    ("", ""),
    ("", "Odwołuję rezerwację hotelu, dojadę samochodem."),
    ("", "Cześć, dziękujemy i do zobaczenia!"),
    ("", "Nowa osoba z naszej szkoły przyśle formularz."),
    (ACK_SUBJECT, outlook_reply("Dziękuję za potwierdzenie.")),
    (ACK_SUBJECT, outlook_reply("Dziękuję, do zobaczenia", lang="en")),
    (ACK_SUBJECT, gt_quoted("Dziękujemy, wszystko się zgadza.")),
    (ACK_SUBJECT, gt_quoted("Super!", attribution="On Tue, Apr 12, 2016 at 10:15 AM, Biuro <b@x.pl> wrote:")),
    (ACK_SUBJECT, f"Dziękuję.\n\n{ACK_BODY}"),  # pasted without any header or '>'
    (ACK_SUBJECT, "Dziękuję.\n\n> Aby zrezygnować z udziału, wystarczy odpowiedzieć na tę\n> wiadomość."),
    ("", "Dziękuję.\n\n> rezygnuję\n> Anna"),
    ("", "Ok.\n\nOd: Anna Kowalska\nWysłano: 12 kwietnia 2016\nDo: biuro\nTemat: Rezygnacja\n\nRezygnuję z udziału."),
    ("", "W załączeniu poprawiony formularz zgłoszenia.\n-- \nRezygnujesz? Zadzwoń: 600 700 800"),
    ("Re: Potwierdzenie usunięcia z listy uczestników [OPO-7K3FQ]", "Dziękuję."),
    ("Fwd: Zgłoszenie", "---------- Forwarded message ---------\nFrom: Jan\n\nRezygnuję z udziału."),
    ("", "Potwierdzam, że przyjadę."),
    ("", "Nie mogę się doczekać!"),
    ("", "Proszę o informację, czy mogę przyjechać z dzieckiem."),
    ("", "Dziękuję, nie potrzebuję noclegu."),
    ("", "Proszę o zmianę danych osobowych."),
    ("", "Proszę o anulowanie rezerwacji hotelowej."),
]


@pytest.mark.parametrize("subject, text", NONE)
def test_no_withdrawal(subject: str, text: str) -> None:
    assert detect_withdrawal(subject, text) == Withdrawal("none", None, "no withdrawal in the sender's own words")


def test_reason_names_the_phrase_and_place() -> None:
    body = detect_withdrawal("Re: Potwierdzenie", "Dzień dobry,\nrezygnuję.\nAnna")
    assert body == Withdrawal("cancel", "rezygnuję", "withdrawal: 'rezygnuję' in body")
    subject = detect_withdrawal("RE: Rezygnacja z udziału", "")
    assert subject.kind == "cancel" and subject.reason == "withdrawal: 'Rezygnacja z udziału' in subject"
    question = detect_withdrawal("", "Dzień dobry, czy mogę zrezygnować? Anna")
    assert question.phrase == "czy mogę zrezygnować?"
    assert question.reason == "unclear: question 'czy mogę zrezygnować?' in body"
    negated = detect_withdrawal("", "Nie rezygnuję!")
    assert negated.phrase == "Nie rezygnuję" and negated.reason.startswith("unclear: negated")


def test_unclear_wins_over_a_cancel_elsewhere() -> None:
    result = detect_withdrawal("Rezygnacja", "Czy mogę zrezygnować tylko z warsztatów?")
    assert result.kind == "unclear"


# --------------------------------------------------------------------------- names

PEOPLE = ["Anna Kowalska", "Jan Nowak", "Wiśniewski Piotr", "Ewa Maria Zielińska-Kot"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("rezygnuje Pani Anna Kowalska", ["Anna Kowalska"]),
        ("proszę wykreślić Jana Nowaka", ["Jan Nowak"]),
        ("Rezygnacja Pani Anny Kowalskiej i Pana Jana Nowaka", ["Anna Kowalska", "Jan Nowak"]),
        ("ANNA KOWALSKA", ["Anna Kowalska"]),
        ("anna kowalska nie przyjedzie", ["Anna Kowalska"]),
        ("Kowalska Anna", ["Anna Kowalska"]),
        ("proszę skreślić Nowaka", ["Jan Nowak"]),
        ("Rezygnuje Nowak", ["Jan Nowak"]),
        ("Pan Piotr Wiśniewski rezygnuje", ["Wiśniewski Piotr"]),
        ("z udziału rezygnuje p. Piotr Wisniewski", ["Wiśniewski Piotr"]),
        ("Pani Ewa Zielińska-Kot", ["Ewa Maria Zielińska-Kot"]),
        ("Nie przyjedzie Pani Ewy Zielińskiej", ["Ewa Maria Zielińska-Kot"]),
        ("A. Kowalska rezygnuje", ["Anna Kowalska"]),
        ("Nowa osoba przyjedzie", []),
        ("nowak", []),  # lower case lone word: not a name
        ("Pozdrawiam\nAnna Wiśniewska", []),  # another Anna, another surname
        ("J. Kowalska rezygnuje", []),  # initial of another first name
        ("Dzień dobry, rezygnuję", []),
        ("jak nowak", []),  # "jak" is no form of "Jan"
        ("Nowakowska Anna", []),  # another surname that starts the same
    ],
)
def test_mentioned_names(text: str, expected: list[str]) -> None:
    assert mentioned_names(text, PEOPLE) == expected


def test_mentioned_names_keeps_given_order_and_needs_a_unique_surname() -> None:
    people = ["Jan Nowak", "Anna Nowak", "Anna Kowalska"]
    assert mentioned_names("Rezygnują Anna Kowalska oraz Jan Nowak", people) == ["Jan Nowak", "Anna Kowalska"]
    assert mentioned_names("Proszę wykreślić Nowaków", people) == []  # two Nowaks: ambiguous
    assert mentioned_names("Proszę wykreślić Annę Nowak", people) == ["Anna Nowak"]
    assert mentioned_names("nic", []) == []


def test_mentioned_names_prefers_the_exact_surname() -> None:
    people = ["Anna Kowalska", "Tomasz Kowalski"]
    assert mentioned_names("Rezygnuje Kowalska", people) == ["Anna Kowalska"]
    assert mentioned_names("Proszę wykreślić Kowalskiego", people) == []  # stem fits both
    assert mentioned_names("Pana Tomasza Kowalskiego", people) == ["Tomasz Kowalski"]


def test_only_the_top_of_a_long_message_is_read() -> None:
    """A withdrawal is a few sentences at the top; a hostile megabyte is not read whole
    (bench/intent.py measures that the rules stay linear on such input)."""
    filler = "Dzień dobry, przesyłam informacje. " * 1000
    assert len(filler) > MAX_TEXT_CHARS
    assert detect_withdrawal("", "Rezygnuję z udziału.\n" + filler).kind == "cancel"
    assert detect_withdrawal("", filler + "Rezygnuję z udziału.").kind == "none"
    assert detect_withdrawal(" " * 1_000_000, " " * 1_000_000 + "x").kind == "none"
