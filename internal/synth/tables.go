package synth

// Code systems used in the output.
const (
	sysSNOMED   = "http://snomed.info/sct"
	sysLOINC    = "http://loinc.org"
	sysRxNorm   = "http://www.nlm.nih.gov/research/umls/rxnorm"
	sysCVX      = "http://hl7.org/fhir/sid/cvx"
	sysUCUM     = "http://unitsofmeasure.org"
	sysNPI      = "http://hl7.org/fhir/sid/us-npi"
	sysSSN      = "http://hl7.org/fhir/sid/us-ssn"
	sysSynthea  = "https://github.com/synthetichealth/synthea"
	sysMRN      = "http://hospital.smarthealthit.org"
	sysDL       = "urn:oid:2.16.840.1.113883.4.3.25"
	sysV2_0203  = "http://terminology.hl7.org/CodeSystem/v2-0203"
	sysMarital  = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
	sysActCode  = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysPartType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysObsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysCondClin = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	sysCondVer  = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysCondCat  = "http://terminology.hl7.org/CodeSystem/condition-category"
	sysAllClin  = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	sysAllVer   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	sysOrgType  = "http://terminology.hl7.org/CodeSystem/organization-type"
	sysNUCC     = "http://nucc.org/provider-taxonomy"
	sysLang     = "urn:ietf:bcp:47"
)

// code is one concept of a code system.
type code struct{ code, display string }

var (
	givenMale = []string{
		"James", "John", "Robert", "Michael", "William", "David", "Richard", "Thomas",
		"Daniel", "Matthew", "Anthony", "Mark", "Steven", "Kevin", "Brian", "George",
		"José", "Luis", "Carlos", "Raúl", "Ángel", "André", "François", "Jürgen",
		"Søren", "Mohammed", "Wei", "Hiroshi", "Dmitri", "Olúwaseun", "Ruben", "Samuel",
	}
	givenFemale = []string{
		"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Margaret",
		"Karen", "Nancy", "Lisa", "Emily", "Sarah", "Jessica", "Ashley", "Dorothy",
		"María", "Sofía", "Lucía", "Zoë", "Chloé", "Renée", "Siobhán", "Ingrid",
		"Mei", "Yuki", "Fatima", "Aisha", "Agnieszka", "Noémie", "Ramona", "Ursula",
	}
	families = []string{
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
		"Wilson", "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson",
		"White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King",
		"Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Núñez", "Godínez",
		"Müller", "Schröder", "Østergaard", "Lefèvre", "Kowalski", "Nguyen", "O'Brien", "Patel",
		"Chen", "Kim", "Cohen", "Kuhic", "VonRueden", "Altenwerth", "Christiansen", "Jacobi",
	}
	streets = []string{
		"Main Street", "Elm Street", "Maple Avenue", "Oak Street", "Washington Street",
		"Pleasant Street", "Park Avenue", "Highland Avenue", "Summer Street", "Center Street",
		"Prospect Street", "Abshire Common", "Chestnut Street", "Walnut Street", "Cedar Lane",
	}
)

// place is a Massachusetts city with a real ZIP code and approximate position.
type place struct {
	city, zip string
	lat, lon  float64
}

var places = []place{
	{"Boston", "02118", 42.3386, -71.0726},
	{"Worcester", "01608", 42.2626, -71.8023},
	{"Springfield", "01103", 42.1015, -72.5898},
	{"Cambridge", "02139", 42.3646, -71.1028},
	{"Lowell", "01852", 42.6334, -71.3162},
	{"Framingham", "01701", 42.2793, -71.4162},
	{"Quincy", "02169", 42.2529, -71.0023},
	{"Somerville", "02143", 42.3876, -71.0995},
	{"Newton", "02458", 42.3370, -71.2092},
	{"Brockton", "02301", 42.0834, -71.0184},
	{"Lynn", "01901", 42.4668, -70.9495},
	{"Salem", "01970", 42.5195, -70.8967},
	{"Pittsfield", "01201", 42.4501, -73.2454},
	{"Leominster", "01453", 42.5251, -71.7598},
}

// condition is a SNOMED CT clinical finding. Chronic conditions stay active;
// the others resolve after days. meds lists RxNorm codes (indexes into
// medications) prescribed for it.
type condition struct {
	code
	chronic bool
	meds    []int
}

var conditions = []condition{
	{code{"44054006", "Diabetes mellitus type 2 (disorder)"}, true, []int{1, 14}},
	{code{"59621000", "Essential hypertension (disorder)"}, true, []int{0, 2, 5}},
	{code{"55822004", "Hyperlipidemia (disorder)"}, true, []int{3, 4}},
	{code{"195967001", "Asthma (disorder)"}, true, []int{6, 7}},
	{code{"13645005", "Chronic obstructive lung disease (disorder)"}, true, []int{7}},
	{code{"162864005", "Body mass index 30+ - obesity (finding)"}, true, nil},
	{code{"15777000", "Prediabetes (finding)"}, true, nil},
	{code{"239873007", "Osteoarthritis of knee (disorder)"}, true, []int{8, 9}},
	{code{"69896004", "Rheumatoid arthritis (disorder)"}, true, []int{9}},
	{code{"35489007", "Depressive disorder (disorder)"}, true, []int{12}},
	{code{"197480006", "Anxiety disorder (disorder)"}, true, []int{12}},
	{code{"49436004", "Atrial fibrillation (disorder)"}, true, []int{13}},
	{code{"53741008", "Coronary arteriosclerosis (disorder)"}, true, []int{4}},
	{code{"431855005", "Chronic kidney disease stage 1 (disorder)"}, true, nil},
	{code{"271737000", "Anemia (disorder)"}, true, nil},
	{code{"444814009", "Viral sinusitis (disorder)"}, false, []int{8}},
	{code{"195662009", "Acute viral pharyngitis (disorder)"}, false, []int{8}},
	{code{"10509002", "Acute bronchitis (disorder)"}, false, []int{8}},
	{code{"43878008", "Streptococcal sore throat (disorder)"}, false, []int{10, 11}},
	{code{"65363002", "Otitis media (disorder)"}, false, []int{10}},
	{code{"40275004", "Contact dermatitis (disorder)"}, false, nil},
}

// medications are RxNorm clinical drugs.
var medications = []code{
	{"314076", "lisinopril 10 MG Oral Tablet"},
	{"860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"},
	{"197361", "amlodipine 5 MG Oral Tablet"},
	{"316672", "simvastatin 10 MG Oral Tablet"},
	{"259255", "atorvastatin 80 MG Oral Tablet"},
	{"310798", "hydrochlorothiazide 25 MG Oral Tablet"},
	{"895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"},
	{"745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"},
	{"313782", "acetaminophen 325 MG Oral Tablet"},
	{"849574", "naproxen sodium 220 MG Oral Tablet"},
	{"308182", "amoxicillin 250 MG Oral Capsule"},
	{"834061", "penicillin V potassium 250 MG Oral Tablet"},
	{"312938", "sertraline 100 MG Oral Tablet"},
	{"855332", "warfarin sodium 5 MG Oral Tablet"},
	{"106892", "insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension"},
}

// allergy is a SNOMED CT allergy with its AllergyIntolerance.category.
type allergy struct {
	code
	category string
}

var allergies = []allergy{
	{code{"91935009", "Allergy to peanuts"}, "food"},
	{code{"91934008", "Allergy to nut"}, "food"},
	{code{"91930004", "Allergy to eggs"}, "food"},
	{code{"417532002", "Allergy to fish"}, "food"},
	{code{"300913006", "Shellfish allergy"}, "food"},
	{code{"300916003", "Latex allergy"}, "environment"},
	{code{"232347008", "Dander (animal) allergy"}, "environment"},
	{code{"232350006", "House dust mite allergy"}, "environment"},
	{code{"418689008", "Allergy to grass pollen"}, "environment"},
	{code{"91936005", "Allergy to penicillin"}, "medication"},
}

var procedures = []code{
	{"73761001", "Colonoscopy"},
	{"430193006", "Medication Reconciliation (procedure)"},
	{"710824005", "Assessment of health and social care needs (procedure)"},
	{"171207006", "Depression screening (procedure)"},
	{"428191000124101", "Documentation of current medications"},
	{"117015009", "Throat culture (procedure)"},
	{"23426006", "Measurement of respiratory function (procedure)"},
	{"399208008", "Plain chest X-ray (procedure)"},
	{"71651007", "Mammography (procedure)"},
	{"76601001", "Intramuscular injection (procedure)"},
}

var vaccines = []code{
	{"140", "Influenza, seasonal, injectable, preservative free"},
	{"113", "Td (adult) preservative free"},
	{"115", "Tdap"},
	{"133", "Pneumococcal conjugate PCV 13"},
	{"33", "pneumococcal polysaccharide vaccine, 23 valent"},
	{"121", "zoster"},
	{"43", "Hep B, adult"},
	{"208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose"},
}

// encounterType is a SNOMED CT encounter type with its v3 ActCode class.
type encounterType struct {
	code
	class string
}

var encounterTypes = []encounterType{
	{code{"162673000", "General examination of patient (procedure)"}, "AMB"},
	{code{"185349003", "Encounter for check up (procedure)"}, "AMB"},
	{code{"185345009", "Encounter for symptom (procedure)"}, "AMB"},
	{code{"390906007", "Follow-up encounter (procedure)"}, "AMB"},
	{code{"50849002", "Emergency room admission (procedure)"}, "EMER"},
	{code{"32485007", "Hospital admission (procedure)"}, "IMP"},
}

var classDisplay = map[string]string{
	"AMB":  "ambulatory",
	"EMER": "emergency",
	"IMP":  "inpatient encounter",
}

// lab is a LOINC laboratory test with a plausible normal range.
type lab struct {
	code
	unit     string
	lo, hi   float64
	decimals int
}

var labs = []lab{
	{code{"2339-0", "Glucose [Mass/volume] in Blood"}, "mg/dL", 70, 110, 1},
	{code{"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"}, "mg/dL", 150, 240, 1},
	{code{"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"}, "%", 4.8, 6.2, 1},
	{code{"2160-0", "Creatinine [Mass/volume] in Serum or Plasma"}, "mg/dL", 0.6, 1.3, 2},
	{code{"718-7", "Hemoglobin [Mass/volume] in Blood"}, "g/dL", 12, 17, 1},
	{code{"6690-2", "Leukocytes [#/volume] in Blood by Automated count"}, "10*3/uL", 4, 10.5, 1},
}

var specialties = []code{
	{"208D00000X", "General Practice"},
	{"207R00000X", "Internal Medicine"},
	{"207Q00000X", "Family Medicine"},
	{"207P00000X", "Emergency Medicine"},
}

var maritalStatuses = []code{
	{"M", "Married"},
	{"S", "Never Married"},
	{"D", "Divorced"},
	{"W", "Widowed"},
}

// orgNames are fictional providers.
var orgNames = []string{
	"Harborview Community Health Center",
	"Saint Brigid's Hospital",
	"Merrimack Valley Family Practice",
	"Pioneer Valley Medical Group",
	"Charles River Internal Medicine",
	"North Shore Urgent Care",
	"Blackstone Valley Health Associates",
	"Berkshire Regional Medical Center",
	"Cape Ann Primary Care",
	"Nashoba Valley Clinic",
	"Quinsigamond Family Health",
	"South Coast Hospitals Group",
}
