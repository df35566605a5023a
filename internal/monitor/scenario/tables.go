package scenario

// Name and address tables. Surnames follow a Zipf-like frequency (the
// first ones are drawn far more often), so that many patients share a
// surname with a workforce member by chance: family detection has to
// compare the address as well.
var (
	surnames = []string{
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
		"Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
		"Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
		"Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
		"Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
		"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
		"Carter", "Roberts", "Kowalski", "Okafor", "Lefebvre", "Schmidt", "Patel", "Chen",
		"Kim", "Cohen", "O'Brien", "Murphy", "Sullivan", "Novak", "Rossi", "Haddad",
	}
	givenFemale = []string{
		"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
		"Sarah", "Karen", "Lisa", "Nancy", "Emily", "Ashley", "Maria", "Sofia",
		"Mei", "Yuki", "Fatima", "Aisha", "Ingrid", "Chloe", "Grace", "Olivia",
	}
	givenMale = []string{
		"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
		"Thomas", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Jose", "Luis",
		"Wei", "Hiroshi", "Omar", "Ahmed", "Lars", "Pierre", "Samuel", "Noah",
	}
	streetNames = []string{
		"Main Street", "Elm Street", "Maple Avenue", "Oak Street", "Washington Street",
		"Pleasant Street", "Park Avenue", "Highland Avenue", "Summer Street", "Center Street",
		"Prospect Street", "Chestnut Street", "Walnut Street", "Cedar Lane", "Pine Road",
		"Lake Drive", "Hill Road", "River Road", "Spring Street", "Church Street",
		"School Street", "Union Street", "Water Street", "Mill Road", "Forest Avenue",
		"Birch Lane", "Cherry Street", "Franklin Street", "Lincoln Avenue", "Jefferson Road",
	}
	cities = []string{"Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Milton"}
	// unknownLogins are account names credential stuffing tries that the
	// hospital does not have.
	unknownLogins = []string{
		"admin", "administrator", "root", "test", "user", "guest", "info", "support",
		"jsmith", "mjones", "dbrown", "nurse1", "doctor", "reception", "billing", "it",
	}
)
